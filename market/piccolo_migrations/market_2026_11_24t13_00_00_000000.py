"""Demand shared across exchanges (一地提出,全国响应, issue 7 §4).

At a demand's exchange: each version of a public-pool demand as it is shared, the outbox of
signed messages to peers (demand versions, offers, decisions), and the offers peers sent back.
At a receiving exchange: the peers' demands and the offers its operators made on them.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-24T13:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "trading: demands shared with peer exchanges, their offers and the peer outbox"

SQL = """
-- Each version of a shared demand: written in the transaction that changes the demand, and
-- queued for every active peer by the delivery job (a peer admitted later gets the latest
-- version of each open demand).
CREATE TABLE trading_shared_demand_versions (
    demand_id uuid NOT NULL REFERENCES trading_demands (id),
    version integer NOT NULL CHECK (version >= 1),
    state varchar(16) NOT NULL CHECK (state IN ('open', 'matched', 'closed')),
    -- The SharedDemand message without its recipient and issue time (filled per delivery).
    message jsonb NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (demand_id, version)
);

-- The outbox of signed messages to peers, one row per message and recipient; signed when sent.
CREATE TABLE trading_peer_deliveries (
    id uuid PRIMARY KEY,
    sequence bigint GENERATED ALWAYS AS IDENTITY,
    kind varchar(32) NOT NULL CHECK (kind IN ('SharedDemand', 'SharedOffer', 'OfferDecision')),
    subject uuid NOT NULL,
    version integer NOT NULL CHECK (version >= 1),
    peer_origin text NOT NULL,
    message jsonb NOT NULL,
    state varchar(16) NOT NULL
        CHECK (state IN ('pending', 'delivered', 'refused', 'failed', 'superseded')),
    attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at timestamptz,
    last_error text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL,
    delivered_at timestamptz,
    UNIQUE (kind, subject, version, peer_origin),
    CHECK ((state = 'pending') = (next_attempt_at IS NOT NULL))
);
CREATE INDEX trading_peer_deliveries_subject
    ON trading_peer_deliveries (kind, subject, peer_origin, version);
CREATE INDEX trading_peer_deliveries_due ON trading_peer_deliveries (next_attempt_at, sequence)
    WHERE state = 'pending';

-- Offers that peer exchanges' operators made on this exchange's shared demands.
CREATE TABLE trading_foreign_offers (
    id uuid PRIMARY KEY,
    demand_id uuid NOT NULL REFERENCES trading_demands (id),
    peer_origin text NOT NULL,
    exchange_name text NOT NULL,
    remote_offer_id uuid NOT NULL,
    demand_version integer NOT NULL,
    product_id uuid NOT NULL,
    product_title text NOT NULL,
    operator_id uuid NOT NULL,
    operator_name text NOT NULL,
    registration_code text NOT NULL,
    delivery_form varchar(16) NOT NULL,
    purpose varchar(32) NOT NULL,
    unit varchar(16) NOT NULL,
    price_minor bigint NOT NULL CHECK (price_minor >= 0),
    currency char(3) NOT NULL,
    message text NOT NULL,
    state varchar(16) NOT NULL CHECK (state IN ('pending', 'accepted', 'declined')),
    decision_reason text NOT NULL DEFAULT '',
    digest char(64) NOT NULL,
    signed_message jsonb NOT NULL,
    signature text NOT NULL,
    received_at timestamptz NOT NULL,
    decided_at timestamptz,
    UNIQUE (peer_origin, remote_offer_id),
    CHECK ((state = 'pending') = (decided_at IS NULL))
);
CREATE INDEX trading_foreign_offers_demand ON trading_foreign_offers (demand_id, received_at);
CREATE UNIQUE INDEX trading_foreign_offers_one_accepted ON trading_foreign_offers (demand_id)
    WHERE state = 'accepted';

-- Peers' shared demands, at their latest accepted version; the buyer is not known here.
CREATE TABLE trading_peer_demands (
    id uuid PRIMARY KEY,
    origin text NOT NULL,
    remote_demand_id uuid NOT NULL,
    version integer NOT NULL CHECK (version >= 1),
    state varchar(16) NOT NULL CHECK (state IN ('open', 'matched', 'closed')),
    close_reason varchar(16) CHECK (close_reason IN ('fulfilled', 'expired', 'withdrawn')),
    title varchar(100) NOT NULL,
    description text NOT NULL,
    domains text[] NOT NULL CHECK (cardinality(domains) > 0),
    purpose varchar(32) NOT NULL,
    budget_minor_per_unit bigint CHECK (budget_minor_per_unit >= 0),
    unit_budgets jsonb NOT NULL,
    currency char(3) NOT NULL,
    delivery_forms text[] NOT NULL CHECK (cardinality(delivery_forms) > 0),
    grade_clearance varchar(16) NOT NULL,
    deadline date NOT NULL,
    digest char(64) NOT NULL,
    signed_message jsonb NOT NULL,
    signature text NOT NULL,
    received_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    UNIQUE (origin, remote_demand_id),
    CHECK ((state = 'closed') = (close_reason IS NOT NULL))
);
CREATE INDEX trading_peer_demands_open ON trading_peer_demands (deadline) WHERE state = 'open';

-- Offers this exchange's operators made on peers' demands, and the buyer's decision.
CREATE TABLE trading_peer_demand_offers (
    id uuid PRIMARY KEY,
    peer_demand_id uuid NOT NULL REFERENCES trading_peer_demands (id),
    operator_org_id uuid NOT NULL REFERENCES organisations (id),
    product_id uuid NOT NULL,
    purpose varchar(32) NOT NULL,
    unit varchar(16) NOT NULL,
    price_minor bigint NOT NULL CHECK (price_minor >= 0),
    currency char(3) NOT NULL,
    message text NOT NULL,
    state varchar(16) NOT NULL CHECK (state IN ('pending', 'accepted', 'declined')),
    decision_reason text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL,
    decided_at timestamptz,
    CHECK ((state = 'pending') = (decided_at IS NULL))
);
CREATE INDEX trading_peer_demand_offers_demand
    ON trading_peer_demand_offers (peer_demand_id, created_at);
CREATE UNIQUE INDEX trading_peer_demand_offers_one_pending
    ON trading_peer_demand_offers (peer_demand_id, product_id) WHERE state = 'pending';
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
