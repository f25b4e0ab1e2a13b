"""The sealed tree (tiles), signed checkpoints, the chain outbox and reconciliation results."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-23T09:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "ledger tiles, checkpoints, chain outbox, reconciliations"

SQL = """
-- The stored tree as C2SP tlog-tiles rows: one row per tile, holding its hashes concatenated.
-- A partial tile grows in place until it is full; it may only ever be extended (its old hashes
-- stay a prefix of its new ones), so every tile a checkpoint once covered keeps its bytes.
CREATE TABLE ledger_tiles (
    level smallint NOT NULL CHECK (level BETWEEN 0 AND 63),
    tile_index bigint NOT NULL CHECK (tile_index >= 0),
    width smallint NOT NULL CHECK (width BETWEEN 1 AND 256),
    hashes bytea NOT NULL,
    PRIMARY KEY (level, tile_index),
    CHECK (octet_length(hashes) = 32 * width)
);

CREATE FUNCTION ledger_tile_only_grows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.level <> OLD.level OR NEW.tile_index <> OLD.tile_index OR NEW.width <= OLD.width
       OR substring(NEW.hashes FROM 1 FOR octet_length(OLD.hashes)) <> OLD.hashes THEN
        RAISE EXCEPTION 'ledger tile %/% may only grow: UPDATE refused', OLD.level, OLD.tile_index
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER ledger_tiles_only_grow BEFORE UPDATE ON ledger_tiles
    FOR EACH ROW EXECUTE FUNCTION ledger_tile_only_grows();
CREATE TRIGGER ledger_tiles_no_delete BEFORE DELETE ON ledger_tiles
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();

-- One signed C2SP checkpoint per seal; the newest is the log's current tree head.
CREATE TABLE ledger_checkpoints (
    tree_size bigint PRIMARY KEY CHECK (tree_size >= 0),
    root_hash bytea NOT NULL CHECK (octet_length(root_hash) = 32),
    note text NOT NULL,
    signed_at timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER ledger_checkpoints_append_only BEFORE UPDATE OR DELETE ON ledger_checkpoints
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();

-- The chain outbox. A transaction is signed and stored here *before* it is broadcast, so a
-- retry re-broadcasts the same bytes (same nonce, same hash): it can be mined at most once.
CREATE TABLE ledger_chain_transactions (
    id bigserial PRIMARY KEY,
    purpose varchar(32) NOT NULL CHECK (purpose IN ('anchor', 'register_codes')),
    sender varchar(42) NOT NULL,
    nonce bigint NOT NULL CHECK (nonce >= 0),
    tx_hash bytea NOT NULL UNIQUE CHECK (octet_length(tx_hash) = 32),
    raw_transaction bytea NOT NULL,
    status varchar(16) NOT NULL DEFAULT 'signed'
        CHECK (status IN ('signed', 'mined', 'confirmed', 'reverted', 'dropped')),
    attempts integer NOT NULL DEFAULT 0,
    last_error text,
    block_number bigint,
    gas_used bigint,
    created_at timestamptz NOT NULL DEFAULT now(),
    confirmed_at timestamptz
);
CREATE UNIQUE INDEX ledger_chain_transactions_one_in_flight ON ledger_chain_transactions (sender)
    WHERE status IN ('signed', 'mined');

-- One row per anchor transaction; a size may be tried again when its transaction was dropped.
CREATE TABLE ledger_anchors (
    id bigserial PRIMARY KEY,
    tree_size bigint NOT NULL CHECK (tree_size > 0),
    root_hash bytea NOT NULL CHECK (octet_length(root_hash) = 32),
    transaction_id bigint NOT NULL UNIQUE REFERENCES ledger_chain_transactions (id),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ledger_anchors_tree_size ON ledger_anchors (tree_size);

-- Registration codes waiting for (or done with) the on-chain registry; fed inside the domain's
-- own transaction by ledger.chain.queue_code_registration.
CREATE TABLE ledger_code_registrations (
    code varchar(128) PRIMARY KEY CHECK (code <> ''),
    leaf_index bigint NOT NULL CHECK (leaf_index >= 0),
    leaf_hash bytea NOT NULL CHECK (octet_length(leaf_hash) = 32),
    status varchar(16) NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'sending', 'registered', 'conflict')),
    transaction_id bigint REFERENCES ledger_chain_transactions (id),
    conflict_exchange varchar(42),
    queued_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ledger_code_registrations_queued ON ledger_code_registrations (queued_at)
    WHERE status = 'queued';

CREATE TABLE ledger_reconciliations (
    id bigserial PRIMARY KEY,
    started_at timestamptz NOT NULL,
    finished_at timestamptz NOT NULL,
    trigger varchar(16) NOT NULL,
    tree_size bigint NOT NULL,
    leaves_checked bigint NOT NULL,
    discrepancy_count integer NOT NULL,
    discrepancies jsonb NOT NULL
);

CREATE TABLE ledger_alerts (
    id bigserial PRIMARY KEY,
    raised_at timestamptz NOT NULL DEFAULT now(),
    reconciliation_id bigint NOT NULL REFERENCES ledger_reconciliations (id),
    summary text NOT NULL
);
"""


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="ledger", description=DESCRIPTION)

    async def create_schema() -> None:
        # Run on the migration transaction's connection, so the schema and the migration record
        # commit together (as in the first ledger migration).
        transaction = engine_finder().current_transaction.get()  # type: ignore[union-attr]
        assert transaction is not None
        await transaction.connection.execute(SQL)

    manager.add_raw(create_schema)
    return manager
