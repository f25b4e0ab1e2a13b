"""Piccolo tables of the listings package (DDL, constraints, indexes: listings/piccolo_migrations).

The queries live in ``listings.repository``; these classes register the tables with Piccolo and
give the repository a handle on the engine. The products table's ``search_vector`` (tsvector)
has no Piccolo column type, so it is declared only in the migration and written by raw SQL.
"""

from piccolo.columns import (
    JSONB,
    UUID,
    Array,
    BigInt,
    Date,
    Integer,
    SmallInt,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.table import Table


class CodeCounter(Table, tablename="listings_code_counters"):
    issuer = Varchar(length=6, primary_key=True)
    kind = Varchar(length=1)
    year = Integer()
    last_serial = BigInt()


class AuthorizationRow(Table, tablename="listings_authorizations"):
    id = UUID(primary_key=True)
    operator_id = UUID()
    granted_by = UUID()
    scope_kind = Varchar(length=16)
    domains = Array(base_column=Text())
    scenarios = Array(base_column=Text())
    resource_codes = Array(base_column=Text())
    term_start = Date()
    term_end = Date()
    conditions = Text()
    state = Varchar(length=16)
    state_reason = Text()
    granted_at = Timestamptz()
    updated_at = Timestamptz()


class AuthorizationEvent(Table, tablename="listings_authorization_events"):
    id = BigInt(primary_key=True)
    authorization_id = UUID()
    action = Varchar(length=16)
    from_state = Varchar(length=16, null=True)
    to_state = Varchar(length=16)
    reason = Text()
    actor = Varchar(length=100)
    leaf_index = BigInt()
    occurred_at = Timestamptz()


class RegistrationRow(Table, tablename="listings_registrations"):
    id = UUID(primary_key=True)
    applicant_id = UUID()
    product_id = UUID(null=True)
    kind = Varchar(length=16)
    subject_kind = Varchar(length=16)
    holder = Varchar(length=200)
    title = Varchar(length=100)
    description = Text()
    data_source = Text()
    domain = Varchar(length=32)
    update_cycle = Varchar(length=16)
    permitted_purposes = Array(base_column=Text())
    security_measures = Text()
    grade = Varchar(length=16)
    target_code = Varchar(length=40, null=True)
    statement = Text()
    state = Varchar(length=16)
    notice_starts_on = Date(null=True)
    notice_days = Integer(null=True)
    rejection_reasons = Array(base_column=Text())
    code = Varchar(length=40, null=True)
    registered_on = Date(null=True)
    applied_on = Date()
    created_at = Timestamptz()
    updated_at = Timestamptz()


class ObjectionRow(Table, tablename="listings_objections"):
    registration_id = UUID(primary_key=True)
    number = Integer()
    objector_org_id = UUID()
    objector = Varchar(length=200)
    grounds = Text()
    filed_on = Date()
    state = Varchar(length=16)
    resolution = Text()


class RegistrationEvent(Table, tablename="listings_registration_events"):
    id = BigInt(primary_key=True)
    registration_id = UUID()
    step = Varchar(length=32)
    state = Varchar(length=16)
    detail = Text()
    actor = Varchar(length=100)
    leaf_index = BigInt()
    occurred_at = Timestamptz()


class RegistryEntry(Table, tablename="listings_registry"):
    code = Varchar(length=40, primary_key=True)
    subject_kind = Varchar(length=16)
    holder_org_id = UUID()
    first_registration_id = UUID()
    current_registration_id = UUID()
    state = Varchar(length=16)
    domain = Varchar(length=32)
    grade = Varchar(length=16)
    assigned_on = Date()
    cancelled_on = Date(null=True)


class ProductRow(Table, tablename="listings_products"):
    id = UUID(primary_key=True)
    operator_id = UUID()
    operator_name = Varchar(length=200)
    title = Varchar(length=50)
    description = Text()
    domain = Varchar(length=32)
    source_resource_codes = Array(base_column=Text())
    delivery_form = Varchar(length=16)
    update_cycle = Varchar(length=16)
    grade = Varchar(length=16)
    quality_completeness = SmallInt()
    quality_accuracy = SmallInt()
    quality_timeliness = SmallInt()
    quality_usability = SmallInt()
    quality_machine_readability = SmallInt()
    permitted_purposes = Array(base_column=Text())
    prices = JSONB()
    scenario = Varchar(length=100, null=True)
    state = Varchar(length=16)
    delisting_reason = Text()
    delisted_by = Varchar(length=16, null=True)
    recognised_from = Varchar(length=255, null=True)
    authorization_id = UUID(null=True)
    registration_code = Varchar(length=40, null=True)
    created_at = Timestamptz()
    updated_at = Timestamptz()
    listed_at = Timestamptz(null=True)


LISTINGS_TABLES: list[type[Table]] = [
    CodeCounter,
    AuthorizationRow,
    AuthorizationEvent,
    RegistrationRow,
    ObjectionRow,
    RegistrationEvent,
    RegistryEntry,
    ProductRow,
]
