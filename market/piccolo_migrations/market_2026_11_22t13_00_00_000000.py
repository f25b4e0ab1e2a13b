"""Orders: the order rows (with the buyer's idempotency key), their state history tied to ledger
leaves, and the access grants that deliver a paid order."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-22T13:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "trading: orders, order events, access grants"

SQL = """
CREATE TABLE trading_orders (
    id uuid PRIMARY KEY,
    buyer_org_id uuid NOT NULL REFERENCES organisations (id),
    placed_by uuid NOT NULL,
    operator_org_id uuid NOT NULL,
    product_id uuid NOT NULL,
    purpose varchar(32) NOT NULL
        CHECK (purpose IN ('public_governance', 'public_welfare', 'industry')),
    unit varchar(16) NOT NULL
        CHECK (unit IN ('per_product', 'per_call', 'per_period', 'per_volume')),
    quantity bigint NOT NULL CHECK (quantity > 0),
    term_start date NOT NULL,
    term_end date NOT NULL,
    currency char(3) NOT NULL,
    unit_price_minor bigint NOT NULL CHECK (unit_price_minor >= 0),
    cap_minor bigint CHECK (cap_minor >= 0),
    gross_minor bigint NOT NULL CHECK (gross_minor >= 0),
    fee_minor bigint NOT NULL CHECK (fee_minor >= 0),
    operator_revenue_minor bigint NOT NULL CHECK (operator_revenue_minor >= 0),
    -- The maximum-permitted-revenue period the operator's revenue was reserved in (NULL: free).
    revenue_period varchar(7),
    state varchar(20) NOT NULL CHECK (state IN ('awaiting_payment', 'paid', 'delivered',
        'accepted', 'completed', 'cancelled', 'expired', 'refunded')),
    payment_provider varchar(32),
    payment_reference varchar(255),
    idempotency_key varchar(255) NOT NULL,
    request_fingerprint char(64) NOT NULL,
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    CHECK (term_end >= term_start),
    CHECK (fee_minor + operator_revenue_minor = gross_minor),
    CHECK ((operator_revenue_minor > 0) = (revenue_period IS NOT NULL)),
    -- An idempotency key is the buyer organisation's own: another buyer may use the same one.
    UNIQUE (buyer_org_id, idempotency_key)
);
CREATE INDEX trading_orders_buyer ON trading_orders (buyer_org_id, created_at);
CREATE INDEX trading_orders_operator ON trading_orders (operator_org_id, created_at);
CREATE INDEX trading_orders_unpaid ON trading_orders (expires_at)
    WHERE state = 'awaiting_payment';
CREATE INDEX trading_orders_payment ON trading_orders (payment_provider, payment_reference);

CREATE TABLE trading_order_events (
    id bigserial PRIMARY KEY,
    order_id uuid NOT NULL REFERENCES trading_orders (id),
    from_state varchar(20),
    to_state varchar(20) NOT NULL,
    actor varchar(200) NOT NULL,
    detail text NOT NULL DEFAULT '',
    leaf_index bigint NOT NULL,
    occurred_at timestamptz NOT NULL
);
CREATE INDEX trading_order_events_order ON trading_order_events (order_id, id);

CREATE TABLE trading_access_grants (
    id uuid PRIMARY KEY,
    order_id uuid NOT NULL UNIQUE REFERENCES trading_orders (id),
    buyer_org_id uuid NOT NULL,
    operator_org_id uuid NOT NULL,
    product_id uuid NOT NULL,
    kind varchar(20) NOT NULL CHECK (kind IN ('download_token', 'api_key', 'sandbox_seat')),
    -- SHA-256 of the secret; NULL until the buyer first asks for its credential.
    secret_hash char(64) UNIQUE,
    display_prefix varchar(16),
    call_quota bigint CHECK (call_quota > 0),
    calls_used bigint NOT NULL DEFAULT 0 CHECK (calls_used >= 0),
    seats integer CHECK (seats > 0),
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL,
    revoked_at timestamptz,
    revocation_reason text,
    CHECK (call_quota IS NULL OR calls_used <= call_quota),
    CHECK ((revoked_at IS NULL) = (revocation_reason IS NULL))
);
CREATE INDEX trading_access_grants_product ON trading_access_grants (product_id)
    WHERE revoked_at IS NULL;
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
