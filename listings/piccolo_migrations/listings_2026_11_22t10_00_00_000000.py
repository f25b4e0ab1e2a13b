"""Listings: authorizations, registrations with the registry of unified codes, products and the
catalog's full-text index."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-22T10:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "authorizations, registrations, registry, products, catalog index"

SQL = """
-- One row per (issuer, kind, year): the last serial handed out. Taken with a row lock by an
-- upsert, so two concurrent code assignments never get the same serial, and a serial is never
-- handed out twice even after its code is cancelled (serials only grow).
CREATE TABLE listings_code_counters (
    issuer varchar(6) NOT NULL CHECK (issuer ~ '^[A-Z][A-Z0-9]{1,5}$'),
    kind char(1) NOT NULL CHECK (kind IN ('R', 'P', 'S')),
    year integer NOT NULL CHECK (year BETWEEN 1000 AND 9999),
    last_serial bigint NOT NULL CHECK (last_serial BETWEEN 1 AND 99999999),
    PRIMARY KEY (issuer, kind, year)
);

CREATE TABLE listings_authorizations (
    id uuid PRIMARY KEY,
    operator_id uuid NOT NULL,
    granted_by uuid NOT NULL,
    scope_kind varchar(16) NOT NULL CHECK (scope_kind IN ('whole', 'domain', 'scenario')),
    domains text[] NOT NULL,
    scenarios text[] NOT NULL,
    resource_codes text[] NOT NULL CHECK (cardinality(resource_codes) > 0),
    term_start date NOT NULL,
    term_end date NOT NULL,
    conditions text NOT NULL,
    state varchar(16) NOT NULL CHECK (state IN ('active', 'suspended', 'revoked', 'expired')),
    state_reason text NOT NULL,
    granted_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    CHECK (term_end > term_start)
);
CREATE INDEX listings_authorizations_operator ON listings_authorizations (operator_id);
CREATE INDEX listings_authorizations_in_force ON listings_authorizations (term_end)
    WHERE state IN ('active', 'suspended');

-- Every change of an authorization, with who made it and why (published in disclosures).
CREATE TABLE listings_authorization_events (
    id bigserial PRIMARY KEY,
    authorization_id uuid NOT NULL REFERENCES listings_authorizations (id),
    action varchar(16) NOT NULL,
    from_state varchar(16),
    to_state varchar(16) NOT NULL,
    reason text NOT NULL,
    actor varchar(100) NOT NULL,
    leaf_index bigint NOT NULL,
    occurred_at timestamptz NOT NULL
);
CREATE INDEX listings_authorization_events_authorization
    ON listings_authorization_events (authorization_id, id);

CREATE TABLE listings_registrations (
    id uuid PRIMARY KEY,
    applicant_id uuid NOT NULL,
    product_id uuid,
    kind varchar(16) NOT NULL CHECK (kind IN ('first', 'change', 'correction', 'cancellation')),
    subject_kind varchar(16) NOT NULL CHECK (subject_kind IN ('resource', 'product', 'service')),
    holder varchar(200) NOT NULL,
    title varchar(100) NOT NULL,
    description text NOT NULL,
    data_source text NOT NULL,
    domain varchar(32) NOT NULL,
    update_cycle varchar(16) NOT NULL,
    permitted_purposes text[] NOT NULL,
    security_measures text NOT NULL,
    grade varchar(16) NOT NULL CHECK (grade IN ('general', 'important', 'core')),
    target_code varchar(40),
    statement text NOT NULL,
    state varchar(16) NOT NULL,
    notice_starts_on date,
    notice_days integer,
    rejection_reasons text[] NOT NULL,
    code varchar(40),
    registered_on date,
    applied_on date NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    CHECK ((notice_starts_on IS NULL) = (notice_days IS NULL)),
    CHECK ((code IS NULL) = (registered_on IS NULL))
);
CREATE INDEX listings_registrations_applicant ON listings_registrations (applicant_id);
CREATE INDEX listings_registrations_code ON listings_registrations (code);
CREATE INDEX listings_registrations_target ON listings_registrations (target_code);
CREATE INDEX listings_registrations_product ON listings_registrations (product_id);
CREATE INDEX listings_registrations_in_notice ON listings_registrations (notice_starts_on)
    WHERE state = 'in_notice';

CREATE TABLE listings_objections (
    registration_id uuid NOT NULL REFERENCES listings_registrations (id),
    number integer NOT NULL CHECK (number >= 1),
    objector_org_id uuid NOT NULL,
    objector varchar(200) NOT NULL,
    grounds text NOT NULL,
    filed_on date NOT NULL,
    state varchar(16) NOT NULL CHECK (state IN ('filed', 'upheld', 'dismissed')),
    resolution text NOT NULL,
    PRIMARY KEY (registration_id, number)
);

-- The full history of each registration, step by step, with the ledger leaf that records it.
CREATE TABLE listings_registration_events (
    id bigserial PRIMARY KEY,
    registration_id uuid NOT NULL REFERENCES listings_registrations (id),
    step varchar(32) NOT NULL,
    state varchar(16) NOT NULL,
    detail text NOT NULL,
    actor varchar(100) NOT NULL,
    leaf_index bigint NOT NULL,
    occurred_at timestamptz NOT NULL
);
CREATE INDEX listings_registration_events_registration
    ON listings_registration_events (registration_id, id);

-- The registry: one row per code ever assigned (the primary key keeps codes unique); the row
-- stays after cancellation so the code can never be assigned again and remains verifiable.
CREATE TABLE listings_registry (
    code varchar(40) PRIMARY KEY,
    subject_kind varchar(16) NOT NULL,
    holder_org_id uuid NOT NULL,
    first_registration_id uuid NOT NULL REFERENCES listings_registrations (id),
    current_registration_id uuid NOT NULL REFERENCES listings_registrations (id),
    state varchar(16) NOT NULL CHECK (state IN ('registered', 'cancelled')),
    domain varchar(32) NOT NULL,
    grade varchar(16) NOT NULL,
    assigned_on date NOT NULL,
    cancelled_on date,
    CHECK ((state = 'cancelled') = (cancelled_on IS NOT NULL))
);
CREATE INDEX listings_registry_holder ON listings_registry (holder_org_id);

CREATE TABLE listings_products (
    id uuid PRIMARY KEY,
    operator_id uuid NOT NULL,
    operator_name varchar(200) NOT NULL,
    title varchar(50) NOT NULL,
    description text NOT NULL,
    domain varchar(32) NOT NULL,
    source_resource_codes text[] NOT NULL CHECK (cardinality(source_resource_codes) > 0),
    delivery_form varchar(16) NOT NULL,
    update_cycle varchar(16) NOT NULL,
    grade varchar(16) NOT NULL CHECK (grade IN ('general', 'important')),
    quality_completeness smallint NOT NULL CHECK (quality_completeness BETWEEN 0 AND 100),
    quality_accuracy smallint NOT NULL CHECK (quality_accuracy BETWEEN 0 AND 100),
    quality_timeliness smallint NOT NULL CHECK (quality_timeliness BETWEEN 0 AND 100),
    quality_usability smallint NOT NULL CHECK (quality_usability BETWEEN 0 AND 100),
    quality_machine_readability smallint NOT NULL
        CHECK (quality_machine_readability BETWEEN 0 AND 100),
    permitted_purposes text[] NOT NULL,
    prices jsonb NOT NULL,
    scenario varchar(100),
    state varchar(16) NOT NULL CHECK (state IN ('draft', 'listed', 'delisted')),
    delisting_reason text NOT NULL,
    -- Who delisted it: reinstating an authorization relists only what the authorization took
    -- down; 'registry' means a code it carries or draws on was cancelled.
    delisted_by varchar(16) CHECK (delisted_by IN ('operator', 'authorization', 'registry')),
    authorization_id uuid REFERENCES listings_authorizations (id),
    registration_code varchar(40) UNIQUE,
    search_vector tsvector NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    listed_at timestamptz,
    CHECK ((state = 'delisted') = (delisting_reason <> '')),
    CHECK (state <> 'listed' OR (authorization_id IS NOT NULL AND registration_code IS NOT NULL))
);
CREATE INDEX listings_products_operator ON listings_products (operator_id);
CREATE INDEX listings_products_authorization ON listings_products (authorization_id);
-- The catalog searches listed products only; partial indexes keep drafts out of its way.
CREATE INDEX listings_products_search ON listings_products USING gin (search_vector)
    WHERE state = 'listed';
CREATE INDEX listings_products_listed ON listings_products (id) WHERE state = 'listed';
"""


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="listings", description=DESCRIPTION)

    async def create_schema() -> None:
        # Piccolo wraps the migration in a transaction; run the script on its connection so that
        # the schema and the migration record commit together.
        transaction = engine_finder().current_transaction.get()  # type: ignore[union-attr]
        assert transaction is not None
        await transaction.connection.execute(SQL)

    manager.add_raw(create_schema)
    return manager
