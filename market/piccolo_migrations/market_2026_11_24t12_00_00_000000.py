"""Peering: the peer exchanges configured here from their signed profiles, the refusals of
their claims kept for staff, and the peer registrations recognised here (互认互通)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-24T12:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "peering: peers, refusals, recognised codes"

SQL = """
CREATE TABLE peering_peers (
    id bigserial PRIMARY KEY,
    origin varchar(255) NOT NULL UNIQUE,
    name varchar(200) NOT NULL,
    vkey text NOT NULL,
    chain_address varchar(42) NOT NULL UNIQUE CHECK (chain_address ~ '^0x[0-9a-fA-F]{40}$'),
    api_base_url varchar(500) NOT NULL CHECK (api_base_url ~ '^https?://'),
    code_issuer varchar(16),
    state varchar(16) NOT NULL CHECK (state IN ('active', 'suspended')),
    -- The signed profile as fetched, so anyone can re-check what the row says.
    profile_note text NOT NULL,
    configured_by varchar(200) NOT NULL,
    leaf_index bigint NOT NULL,
    configured_at timestamptz NOT NULL
);

-- Append-only evidence for staff: a refusal is never edited or removed.
CREATE TABLE peering_refusals (
    id bigserial PRIMARY KEY,
    kind varchar(64) NOT NULL,
    peer_origin varchar(255),
    reason text NOT NULL,
    evidence jsonb NOT NULL,
    refused_at timestamptz NOT NULL
);
CREATE INDEX peering_refusals_recent ON peering_refusals (refused_at DESC, id DESC);
CREATE FUNCTION peering_refusals_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'peering_refusals is append-only';
END $$;
CREATE TRIGGER peering_refusals_append_only BEFORE UPDATE OR DELETE ON peering_refusals
    FOR EACH ROW EXECUTE FUNCTION peering_refusals_append_only();

CREATE TABLE peering_recognitions (
    code varchar(40) PRIMARY KEY,
    peer_origin varchar(255) NOT NULL REFERENCES peering_peers (origin),
    product_id uuid NOT NULL UNIQUE,
    operator_org_id uuid NOT NULL REFERENCES organisations (id),
    -- What proved the code: the peer's leaf, the checkpoint that included it, the anchor.
    peer_leaf_index bigint NOT NULL CHECK (peer_leaf_index >= 0),
    peer_leaf_hash bytea NOT NULL CHECK (octet_length(peer_leaf_hash) = 32),
    peer_tree_size bigint NOT NULL CHECK (peer_tree_size > peer_leaf_index),
    peer_root_hash bytea NOT NULL CHECK (octet_length(peer_root_hash) = 32),
    anchored_tree_size bigint NOT NULL CHECK (anchored_tree_size > peer_leaf_index),
    checkpoint_note text NOT NULL,
    leaf_index bigint NOT NULL,
    state varchar(16) NOT NULL CHECK (state IN ('recognised', 'withdrawn')),
    withdrawn_reason text NOT NULL DEFAULT '',
    withdrawal_leaf_index bigint,
    recognised_at timestamptz NOT NULL,
    checked_at timestamptz NOT NULL,
    CHECK ((state = 'withdrawn') = (withdrawn_reason <> '' AND withdrawal_leaf_index IS NOT NULL))
);
CREATE INDEX peering_recognitions_watched ON peering_recognitions (checked_at)
    WHERE state = 'recognised';
"""


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="market", description=DESCRIPTION)

    async def create_schema() -> None:
        # Piccolo wraps the migration in a transaction; run the script on its connection so that
        # the schema and the migration record commit together.
        transaction = engine_finder().current_transaction.get()  # type: ignore[union-attr]
        assert transaction is not None
        await transaction.connection.execute(SQL)

    manager.add_raw(create_schema)
    return manager
