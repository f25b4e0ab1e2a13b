"""Settlement: the double-entry journal, fee caps and revenue ceilings, free-use eligibility,
payment attempts, bank transfers and processed provider webhooks.

The database itself holds the money rules that must never be broken by any code path
(CONVENTIONS 8): every journal transaction balances per currency (a deferred constraint
trigger, checked at commit when all postings are in), and history is append-only (row triggers;
TRUNCATE, which only an operator or the test suite runs, is not a row operation).
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-22T10:05:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "settlement journal, caps, ceilings, eligibility, payments"

SQL = r"""
CREATE FUNCTION settlement_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'settlement table % is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

-- The journal ----------------------------------------------------------------------------------

CREATE TABLE journal_transactions (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    idempotency_key varchar(255) NOT NULL UNIQUE CHECK (length(idempotency_key) > 0),
    kind varchar(32) NOT NULL CHECK (kind IN (
        'order_payment_received', 'order_settled', 'refund', 'settled_refund', 'payout',
        'reversal')),
    reference varchar(255) NOT NULL CHECK (length(reference) > 0),
    -- UNIQUE: a transaction is reversed at most once; a reversal always names its original.
    reverses_id bigint UNIQUE REFERENCES journal_transactions (id),
    fingerprint char(64) NOT NULL,
    posted_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind = 'reversal') = (reverses_id IS NOT NULL)),
    CHECK (reverses_id IS NULL OR reverses_id < id)
);
CREATE INDEX journal_transactions_reference ON journal_transactions (reference);

CREATE TABLE journal_postings (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    transaction_id bigint NOT NULL REFERENCES journal_transactions (id),
    account varchar(160) NOT NULL CHECK (length(account) > 0),
    direction varchar(6) NOT NULL CHECK (direction IN ('debit', 'credit')),
    currency char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    -- The side carries the sign, the amount never does (as in the domain model).
    amount_minor bigint NOT NULL CHECK (amount_minor > 0)
);
CREATE INDEX journal_postings_transaction_id ON journal_postings (transaction_id);
CREATE INDEX journal_postings_account ON journal_postings (account, currency);

-- Checked at commit, once every posting of the transaction is in: a transaction has at least two
-- postings and its debits equal its credits in every currency. Fired both for a new transaction
-- and for a new posting, so a posting added later to an old transaction is checked too.
CREATE FUNCTION journal_check_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    checked_id bigint;
    posting_count bigint;
    unbalanced record;
BEGIN
    IF TG_TABLE_NAME = 'journal_transactions' THEN
        checked_id := NEW.id;
    ELSE
        checked_id := NEW.transaction_id;
    END IF;
    SELECT count(*) INTO posting_count FROM journal_postings WHERE transaction_id = checked_id;
    IF posting_count < 2 THEN
        RAISE EXCEPTION 'journal transaction % has % posting(s); at least two are needed',
            checked_id, posting_count
            USING ERRCODE = 'check_violation', CONSTRAINT = 'journal_transaction_balanced';
    END IF;
    SELECT currency,
           sum(CASE direction WHEN 'debit' THEN amount_minor ELSE -amount_minor END) AS net
      INTO unbalanced
      FROM journal_postings
     WHERE transaction_id = checked_id
     GROUP BY currency
    HAVING sum(CASE direction WHEN 'debit' THEN amount_minor ELSE -amount_minor END) <> 0
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'journal transaction % is unbalanced in %: debits minus credits is %',
            checked_id, unbalanced.currency, unbalanced.net
            USING ERRCODE = 'check_violation', CONSTRAINT = 'journal_transaction_balanced';
    END IF;
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER journal_transactions_balanced
    AFTER INSERT ON journal_transactions DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION journal_check_balanced();
CREATE CONSTRAINT TRIGGER journal_postings_balanced
    AFTER INSERT ON journal_postings DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION journal_check_balanced();

CREATE TRIGGER journal_transactions_append_only BEFORE UPDATE OR DELETE ON journal_transactions
    FOR EACH ROW EXECUTE FUNCTION settlement_refuse_change();
CREATE TRIGGER journal_postings_append_only BEFORE UPDATE OR DELETE ON journal_postings
    FOR EACH ROW EXECUTE FUNCTION settlement_refuse_change();

-- Upper-limit fees (上限收费标准) -------------------------------------------------------------

CREATE TABLE fee_caps (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- A listings product id; a plain id, not a foreign key (packages link by id only).
    product_id varchar(128) NOT NULL CHECK (length(product_id) > 0),
    -- Free purposes are charged nothing, so only paid use has a cap.
    purpose varchar(32) NOT NULL CHECK (purpose = 'industry_development'),
    unit varchar(16) NOT NULL CHECK (unit IN ('per_product', 'per_call', 'per_period',
                                             'per_volume')),
    cap_minor bigint NOT NULL CHECK (cap_minor >= 0),
    currency char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    effective_from date NOT NULL,
    effective_to date CHECK (effective_to IS NULL OR effective_to >= effective_from),
    approved_by varchar(128) NOT NULL,
    -- The authority's document (批复文号) that approved this version.
    approval_reference varchar(200) NOT NULL CHECK (length(btrim(approval_reference)) > 0),
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX fee_caps_key ON fee_caps (product_id, purpose, unit, effective_from);

-- A version is history: the one change allowed is closing an open-ended version once, when a
-- successor is approved; everything else about it stays as approved.
CREATE FUNCTION fee_caps_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR OLD.effective_to IS NOT NULL OR NEW.effective_to IS NULL
       OR (NEW.id, NEW.product_id, NEW.purpose, NEW.unit, NEW.cap_minor, NEW.currency,
           NEW.effective_from, NEW.approved_by, NEW.approval_reference, NEW.recorded_at)
          IS DISTINCT FROM
          (OLD.id, OLD.product_id, OLD.purpose, OLD.unit, OLD.cap_minor, OLD.currency,
           OLD.effective_from, OLD.approved_by, OLD.approval_reference, OLD.recorded_at) THEN
        RAISE EXCEPTION 'fee cap versions are history: only closing an open-ended one is allowed'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER fee_caps_history BEFORE UPDATE OR DELETE ON fee_caps
    FOR EACH ROW EXECUTE FUNCTION fee_caps_guard();

-- Maximum permitted revenue (最高准许收入) --------------------------------------------------

CREATE TABLE revenue_ceilings (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    operator_id varchar(128) NOT NULL CHECK (length(operator_id) > 0),
    period varchar(7) NOT NULL CHECK (period ~ '^[0-9]{4}(-(0[1-9]|1[0-2]))?$'),
    -- A re-approval of a period appends a new version; the highest version is in force.
    version integer NOT NULL CHECK (version >= 1),
    currency char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    operating_cost_minor bigint NOT NULL CHECK (operating_cost_minor >= 0),
    permitted_profit_minor bigint NOT NULL CHECK (permitted_profit_minor >= 0),
    tax_minor bigint NOT NULL CHECK (tax_minor >= 0),
    approved_minor bigint NOT NULL CHECK (
        approved_minor = operating_cost_minor + permitted_profit_minor + tax_minor),
    approved_by varchar(128) NOT NULL,
    approval_reference varchar(200) NOT NULL CHECK (length(btrim(approval_reference)) > 0),
    recorded_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (operator_id, period, version)
);
CREATE TRIGGER revenue_ceilings_append_only BEFORE UPDATE OR DELETE ON revenue_ceilings
    FOR EACH ROW EXECUTE FUNCTION settlement_refuse_change();

-- The row that orders lock (SELECT ... FOR UPDATE) to reserve revenue, so concurrent orders
-- cannot overshoot the ceiling together.
CREATE TABLE revenue_counters (
    operator_id varchar(128) NOT NULL,
    period varchar(7) NOT NULL CHECK (period ~ '^[0-9]{4}(-(0[1-9]|1[0-2]))?$'),
    currency char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    committed_revenue_minor bigint NOT NULL DEFAULT 0 CHECK (committed_revenue_minor >= 0),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (operator_id, period)
);

-- Free use (有条件无偿) ---------------------------------------------------------------------

CREATE TABLE free_use_eligibilities (
    id uuid PRIMARY KEY,
    buyer_org_id varchar(128) NOT NULL CHECK (length(buyer_org_id) > 0),
    purposes varchar(32)[] NOT NULL CHECK (
        cardinality(purposes) > 0
        AND purposes <@ ARRAY['public_governance', 'public_welfare']::varchar(32)[]),
    valid_from date NOT NULL,
    valid_to date NOT NULL CHECK (valid_to >= valid_from),
    evidence text NOT NULL CHECK (length(btrim(evidence)) > 0),
    granted_by varchar(128) NOT NULL,
    granted_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz,
    revoked_by varchar(128),
    revocation_reason text,
    CHECK ((revoked_at IS NULL) = (revoked_by IS NULL)
           AND (revoked_at IS NULL) = (revocation_reason IS NULL))
);
CREATE INDEX free_use_eligibilities_buyer ON free_use_eligibilities (buyer_org_id);

-- A grant is evidence-backed history: it may only be revoked, once.
CREATE FUNCTION free_use_eligibilities_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR OLD.revoked_at IS NOT NULL
       OR (NEW.id, NEW.buyer_org_id, NEW.purposes, NEW.valid_from, NEW.valid_to, NEW.evidence,
           NEW.granted_by, NEW.granted_at)
          IS DISTINCT FROM
          (OLD.id, OLD.buyer_org_id, OLD.purposes, OLD.valid_from, OLD.valid_to, OLD.evidence,
           OLD.granted_by, OLD.granted_at) THEN
        RAISE EXCEPTION 'eligibility grants are history: only a single revocation is allowed'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER free_use_eligibilities_history BEFORE UPDATE OR DELETE ON free_use_eligibilities
    FOR EACH ROW EXECUTE FUNCTION free_use_eligibilities_guard();

-- Payments -------------------------------------------------------------------------------------

-- Written and committed before the provider is called, so that a crash between the two is
-- retried with the same idempotency key and finds the same provider payment.
CREATE TABLE payment_attempts (
    id uuid PRIMARY KEY,
    order_id varchar(128) NOT NULL CHECK (length(order_id) > 0),
    provider varchar(32) NOT NULL,
    idempotency_key varchar(255) NOT NULL UNIQUE,
    request_fingerprint char(64) NOT NULL,
    amount_minor bigint NOT NULL CHECK (amount_minor > 0),
    currency char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    connected_account varchar(255),
    application_fee_minor bigint CHECK (
        application_fee_minor IS NULL
        OR (application_fee_minor >= 0 AND application_fee_minor <= amount_minor)),
    provider_payment_id varchar(255) UNIQUE,
    status varchar(24) NOT NULL CHECK (status IN (
        'created', 'requires_action', 'processing', 'succeeded', 'failed', 'canceled')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((connected_account IS NULL) = (application_fee_minor IS NULL))
);
CREATE INDEX payment_attempts_order_id ON payment_attempts (order_id);

CREATE TABLE processed_webhook_events (
    provider varchar(32) NOT NULL,
    event_id varchar(255) NOT NULL,
    event_type varchar(128) NOT NULL,
    outcome varchar(64) NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, event_id)
);
CREATE TRIGGER processed_webhook_events_append_only
    BEFORE UPDATE OR DELETE ON processed_webhook_events
    FOR EACH ROW EXECUTE FUNCTION settlement_refuse_change();

-- Bank transfer: invoices carry a reference the buyer quotes on the transfer; staff confirm
-- each receipt from the bank statement; refunds of over-payments are instructions to the bank.
CREATE SEQUENCE bank_invoice_number AS bigint MINVALUE 1;

CREATE TABLE bank_invoices (
    id uuid PRIMARY KEY,
    reference varchar(40) NOT NULL UNIQUE,
    order_id varchar(128) NOT NULL CHECK (length(order_id) > 0),
    buyer_org_id varchar(128) NOT NULL CHECK (length(buyer_org_id) > 0),
    idempotency_key varchar(255) NOT NULL UNIQUE,
    amount_minor bigint NOT NULL CHECK (amount_minor > 0),
    currency char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    issued_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX bank_invoices_order_id ON bank_invoices (order_id);

CREATE TABLE bank_receipts (
    id uuid PRIMARY KEY,
    invoice_id uuid NOT NULL REFERENCES bank_invoices (id),
    -- The bank statement line's own id: the same line confirmed twice is one receipt.
    bank_transaction_ref varchar(128) NOT NULL UNIQUE CHECK (length(bank_transaction_ref) > 0),
    amount_minor bigint NOT NULL CHECK (amount_minor > 0),
    currency char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    received_on date NOT NULL,
    confirmed_by varchar(128) NOT NULL,
    confirmed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX bank_receipts_invoice_id ON bank_receipts (invoice_id);

CREATE TABLE bank_refunds (
    id uuid PRIMARY KEY,
    invoice_id uuid NOT NULL REFERENCES bank_invoices (id),
    idempotency_key varchar(255) NOT NULL UNIQUE,
    amount_minor bigint NOT NULL CHECK (amount_minor > 0),
    currency char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    reason varchar(200) NOT NULL,
    requested_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX bank_refunds_invoice_id ON bank_refunds (invoice_id);

CREATE TRIGGER bank_invoices_append_only BEFORE UPDATE OR DELETE ON bank_invoices
    FOR EACH ROW EXECUTE FUNCTION settlement_refuse_change();
CREATE TRIGGER bank_receipts_append_only BEFORE UPDATE OR DELETE ON bank_receipts
    FOR EACH ROW EXECUTE FUNCTION settlement_refuse_change();
CREATE TRIGGER bank_refunds_append_only BEFORE UPDATE OR DELETE ON bank_refunds
    FOR EACH ROW EXECUTE FUNCTION settlement_refuse_change();
"""


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="settlement", description=DESCRIPTION)

    async def create_schema() -> None:
        # Piccolo wraps the migration in a transaction; run the script on its connection so that
        # the schema and the migration record commit together.
        transaction = engine_finder().current_transaction.get()  # type: ignore[union-attr]
        assert transaction is not None
        await transaction.connection.execute(SQL)

    manager.add_raw(create_schema)
    return manager
