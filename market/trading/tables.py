"""Piccolo tables of trading (DDL, constraints and indexes: market/piccolo_migrations).

The queries live in ``market.trading.store`` and ``market.trading.notifications``; these classes
register the tables with Piccolo and give those modules a handle on the engine.
"""

from piccolo.columns import (
    JSONB,
    UUID,
    Array,
    BigInt,
    Date,
    DoublePrecision,
    Integer,
    SmallInt,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.table import Table


class DemandRow(Table, tablename="trading_demands"):
    id = UUID(primary_key=True)
    buyer_org_id = UUID()
    title = Varchar(length=100)
    description = Text()
    domains = Array(base_column=Text())
    purpose = Varchar(length=32)
    budget_minor_per_unit = BigInt(null=True)
    unit_budgets = JSONB()
    delivery_forms = Array(base_column=Text())
    grade_clearance = Varchar(length=16)
    deadline = Date()
    visibility = Varchar(length=16)
    state = Varchar(length=16)
    close_reason = Varchar(length=16, null=True)
    created_at = Timestamptz()
    updated_at = Timestamptz()


class QuestionRow(Table, tablename="trading_demand_questions"):
    id = UUID(primary_key=True)
    demand_id = UUID()
    operator_org_id = UUID()
    question = Text()
    answer = Text(null=True)
    asked_at = Timestamptz()
    answered_at = Timestamptz(null=True)


class OfferRow(Table, tablename="trading_offers"):
    id = UUID(primary_key=True)
    demand_id = UUID()
    operator_org_id = UUID()
    product_id = UUID()
    purpose = Varchar(length=32)
    unit = Varchar(length=16)
    price_minor = BigInt()
    currency = Varchar(length=3)
    message = Text()
    state = Varchar(length=16)
    order_id = UUID(null=True)
    created_at = Timestamptz()
    decided_at = Timestamptz(null=True)
    decline_reason = Text(null=True)


class MatchRow(Table, tablename="trading_matches"):
    demand_id = UUID(primary_key=True)
    product_id = UUID()
    operator_org_id = UUID()
    rank = Integer()
    score = DoublePrecision()
    matched_terms = Array(base_column=Text())
    unit = Varchar(length=16)
    price_minor = BigInt()
    computed_at = Timestamptz()


class RefreshStateRow(Table, tablename="trading_refresh_state"):
    id = SmallInt(primary_key=True)
    products_seen_at = Timestamptz()
    demands_seen_at = Timestamptz()


class WebhookRow(Table, tablename="trading_webhooks"):
    organisation_id = UUID(primary_key=True)
    url = Text()
    secret = Text()
    created_at = Timestamptz()
    updated_at = Timestamptz()


class NotificationRow(Table, tablename="trading_notifications"):
    id = UUID(primary_key=True)
    sequence = BigInt()
    organisation_id = UUID()
    kind = Varchar(length=48)
    subject = Varchar(length=100)
    payload = JSONB()
    created_at = Timestamptz()
    read_at = Timestamptz(null=True)
    delivery = Varchar(length=16)
    attempts = Integer()
    next_attempt_at = Timestamptz(null=True)
    last_error = Text()
    delivered_at = Timestamptz(null=True)


TRADING_TABLES: list[type[Table]] = [
    DemandRow,
    QuestionRow,
    OfferRow,
    MatchRow,
    RefreshStateRow,
    WebhookRow,
    NotificationRow,
]
