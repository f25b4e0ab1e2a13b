"""Trading: buyers' demands, operators' questions and offers, stored matches, the refresh
watermark, and the notification outbox with per-organisation webhooks."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-22T12:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "trading: demands, questions, offers, matches, notifications, webhooks"

SQL = """
CREATE TABLE trading_demands (
    id uuid PRIMARY KEY,
    buyer_org_id uuid NOT NULL REFERENCES organisations (id),
    title varchar(100) NOT NULL CHECK (length(btrim(title)) > 0),
    description text NOT NULL,
    domains text[] NOT NULL CHECK (cardinality(domains) > 0),
    purpose varchar(32) NOT NULL
        CHECK (purpose IN ('public_governance', 'public_welfare', 'industry')),
    budget_minor_per_unit bigint CHECK (budget_minor_per_unit >= 0),
    unit_budgets jsonb NOT NULL DEFAULT '{}'::jsonb,
    delivery_forms text[] NOT NULL CHECK (cardinality(delivery_forms) > 0),
    grade_clearance varchar(16) NOT NULL
        CHECK (grade_clearance IN ('general', 'important', 'core')),
    deadline date NOT NULL,
    visibility varchar(16) NOT NULL CHECK (visibility IN ('public_pool', 'exchange')),
    state varchar(16) NOT NULL CHECK (state IN ('open', 'matched', 'closed')),
    close_reason varchar(16) CHECK (close_reason IN ('fulfilled', 'expired', 'withdrawn')),
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    -- A closed demand says why; an open or matched one has no reason.
    CHECK ((state = 'closed') = (close_reason IS NOT NULL)),
    CHECK (budget_minor_per_unit IS NOT NULL OR unit_budgets <> '{}'::jsonb)
);
CREATE INDEX trading_demands_buyer ON trading_demands (buyer_org_id, created_at);
-- The matching refresh polls for demands changed since its last run.
CREATE INDEX trading_demands_updated ON trading_demands (updated_at);
CREATE INDEX trading_demands_due ON trading_demands (deadline) WHERE state <> 'closed';

CREATE TABLE trading_demand_questions (
    id uuid PRIMARY KEY,
    demand_id uuid NOT NULL REFERENCES trading_demands (id),
    operator_org_id uuid NOT NULL REFERENCES organisations (id),
    question text NOT NULL CHECK (length(btrim(question)) > 0),
    answer text,
    asked_at timestamptz NOT NULL,
    answered_at timestamptz,
    CHECK ((answer IS NULL) = (answered_at IS NULL))
);
CREATE INDEX trading_demand_questions_demand ON trading_demand_questions (demand_id, asked_at);

CREATE TABLE trading_offers (
    id uuid PRIMARY KEY,
    demand_id uuid NOT NULL REFERENCES trading_demands (id),
    operator_org_id uuid NOT NULL REFERENCES organisations (id),
    product_id uuid NOT NULL,
    purpose varchar(32) NOT NULL,
    unit varchar(16) NOT NULL,
    price_minor bigint NOT NULL CHECK (price_minor >= 0),
    currency char(3) NOT NULL CHECK (currency = 'CNY'),
    message text NOT NULL,
    state varchar(16) NOT NULL CHECK (state IN ('pending', 'accepted', 'declined')),
    -- Set when the orders use case turns an accepted offer into an order; NULL until then.
    order_id uuid,
    created_at timestamptz NOT NULL,
    decided_at timestamptz,
    CHECK ((state = 'pending') = (decided_at IS NULL))
);
CREATE INDEX trading_offers_demand ON trading_offers (demand_id, created_at);
-- One pending offer per product and demand, and at most one accepted offer per demand.
CREATE UNIQUE INDEX trading_offers_one_pending ON trading_offers (demand_id, product_id)
    WHERE state = 'pending';
CREATE UNIQUE INDEX trading_offers_one_accepted ON trading_offers (demand_id)
    WHERE state = 'accepted';

-- The last computed top products of each open demand: what both sides were told about.
CREATE TABLE trading_matches (
    demand_id uuid NOT NULL REFERENCES trading_demands (id),
    product_id uuid NOT NULL,
    operator_org_id uuid NOT NULL,
    rank integer NOT NULL CHECK (rank >= 1),
    score double precision NOT NULL,
    matched_terms text[] NOT NULL,
    unit varchar(16) NOT NULL,
    price_minor bigint NOT NULL CHECK (price_minor >= 0),
    computed_at timestamptz NOT NULL,
    PRIMARY KEY (demand_id, product_id)
);

-- How far the stored-match refresh has read the changes of products and demands.
CREATE TABLE trading_refresh_state (
    id smallint PRIMARY KEY CHECK (id = 1),
    products_seen_at timestamptz NOT NULL,
    demands_seen_at timestamptz NOT NULL
);

CREATE TABLE trading_webhooks (
    organisation_id uuid PRIMARY KEY REFERENCES organisations (id),
    url text NOT NULL CHECK (url ~ '^https?://[^/?#]+'),
    secret text NOT NULL CHECK (length(secret) >= 32),
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

-- The outbox: written in the transaction of the change it reports, read by the API and
-- delivered to the organisation's webhook by a job.
CREATE TABLE trading_notifications (
    id uuid PRIMARY KEY,
    sequence bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    organisation_id uuid NOT NULL REFERENCES organisations (id),
    kind varchar(48) NOT NULL,
    subject varchar(100) NOT NULL,
    payload jsonb NOT NULL,
    created_at timestamptz NOT NULL,
    read_at timestamptz,
    delivery varchar(16) NOT NULL CHECK (delivery IN ('none', 'pending', 'delivered', 'failed')),
    attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at timestamptz,
    last_error text NOT NULL DEFAULT '',
    delivered_at timestamptz,
    CHECK ((delivery = 'pending') = (next_attempt_at IS NOT NULL))
);
CREATE INDEX trading_notifications_organisation
    ON trading_notifications (organisation_id, sequence DESC);
CREATE INDEX trading_notifications_due ON trading_notifications (next_attempt_at)
    WHERE delivery = 'pending';
"""


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="market", description=DESCRIPTION)

    async def create_schema() -> None:
        # Run on the migration transaction's connection, so schema and record commit together.
        transaction = engine_finder().current_transaction.get()  # type: ignore[union-attr]
        assert transaction is not None
        await transaction.connection.execute(SQL)

    manager.add_raw(create_schema)
    return manager
