"""Operator period statements over HTTP, as JSON or CSV (``?format=csv`` or a ``.csv`` period,
e.g. ``/operators/{id}/statements/2026-11.csv``). The operator sees its own; staff and the
regulator see any operator's; anyone else is told the operator does not exist.

Also the staff's reconciliation of the journal against the payment providers
(``/payments/reconciliation?period=``)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec
from litestar import Controller, Response, get
from litestar.di import Provide
from litestar.params import FromPath, FromQuery, QueryParameter

from market.accounts.model import Role
from market.api.access import Caller, provide_principal, roles
from market.settings import Settings
from market.trading import statements
from settlement import provider_reconciliation
from settlement.payments.stripe_provider import StripeProvider
from settlement.payouts import Payout

Format = Annotated[Literal["json", "csv"], QueryParameter(name="format", required=False)]
_CSV_SUFFIX = ".csv"


class TotalsOut(msgspec.Struct):
    currency: str
    order_count: int
    gross_minor: int
    fee_minor: int
    net_minor: int
    refunded_gross_minor: int
    refunded_fee_minor: int
    refunded_net_minor: int
    net_after_refunds_minor: int
    # Paid by Stripe transfer to the operator's connected account; payable is what the
    # exchange still owes (net after refunds − transferred).
    transferred_minor: int
    payable_minor: int


class LineOut(msgspec.Struct):
    order_id: UUID
    product_id: UUID
    order_state: str
    currency: str
    gross_minor: int
    fee_minor: int
    net_minor: int
    refunded_gross_minor: int
    refunded_fee_minor: int
    refunded_net_minor: int
    net_after_refunds_minor: int
    # Paid by Stripe transfer to the operator's connected account; payable is what the
    # exchange still owes (net after refunds − transferred).
    transferred_minor: int
    payable_minor: int


class PayoutOut(msgspec.Struct):
    reference: str
    currency: str
    amount_minor: int
    period: str | None
    instructed_at: datetime
    bank_transaction_ref: str | None
    sent_on: date | None


def payout_out(payout: Payout) -> PayoutOut:
    return PayoutOut(
        reference=payout.reference, currency=payout.amount.currency,
        amount_minor=payout.amount.amount_minor, period=payout.period,
        instructed_at=payout.instructed_at, bank_transaction_ref=payout.bank_transaction_ref,
        sent_on=payout.sent_on)


class StatementOut(msgspec.Struct):
    operator_id: UUID
    period: str
    zone: str
    period_start: datetime
    period_end: datetime
    totals: list[TotalsOut]
    lines: list[LineOut]
    # Bank payouts to the operator instructed in the period.
    payouts: list[PayoutOut]


def statement_out(statement: statements.Statement) -> StatementOut:
    return StatementOut(
        operator_id=statement.operator_id, period=statement.period, zone=statement.zone,
        period_start=statement.period_start, period_end=statement.period_end,
        totals=[TotalsOut(
            currency=t.currency, order_count=t.order_count, gross_minor=t.gross_minor,
            fee_minor=t.fee_minor, net_minor=t.net_minor,
            refunded_gross_minor=t.refunded_gross_minor,
            refunded_fee_minor=t.refunded_fee_minor,
            refunded_net_minor=t.refunded_net_minor,
            net_after_refunds_minor=t.net_after_refunds_minor,
            transferred_minor=t.transferred_minor, payable_minor=t.payable_minor)
            for t in statement.totals],
        lines=[LineOut(
            order_id=line.order_id, product_id=line.product_id, order_state=line.order_state,
            currency=line.currency, gross_minor=line.gross_minor, fee_minor=line.fee_minor,
            net_minor=line.net_minor, refunded_gross_minor=line.refunded_gross_minor,
            refunded_fee_minor=line.refunded_fee_minor,
            refunded_net_minor=line.refunded_net_minor,
            net_after_refunds_minor=line.net_after_refunds_minor,
            transferred_minor=line.transferred_minor, payable_minor=line.payable_minor)
            for line in statement.lines],
        payouts=[payout_out(payout) for payout in statement.payouts])


def statement_controller(settings: Settings) -> type[Controller]:
    """The controller, bound to the exchange's zone (periods are its calendar's)."""
    zone = settings.exchange_zone

    class StatementController(Controller):
        path = "/operators/{operator_id:uuid}/statements"
        # Also covers the OPTIONS route Litestar adds (default-deny otherwise).
        opt = roles(Role.OPERATOR, Role.STAFF, Role.REGULATOR)
        dependencies = {"principal": Provide(provide_principal, sync_to_thread=False)}

        @get("/{period:str}", opt=roles(Role.OPERATOR, Role.STAFF, Role.REGULATOR),
             summary="An operator's statement for a year or month: gross, fee, net, refunds",
             description="JSON by default; CSV with `?format=csv` or a `.csv` period.")
        async def statement(self, principal: Caller, operator_id: FromPath[UUID],
                            period: FromPath[str],
                            output_format: Format = "json") -> Response[bytes]:
            as_csv = output_format == "csv"
            if period.endswith(_CSV_SUFFIX):
                period, as_csv = period[: -len(_CSV_SUFFIX)], True
            found = await statements.statement_for(principal, operator_id, period, zone=zone)
            if as_csv:
                filename = f"statement-{found.operator_id}-{found.period}.csv"
                return Response(
                    statements.to_csv(found).encode("utf-8"),
                    # Litestar appends "; charset=utf-8" to text types itself.
                    media_type="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})
            return Response(msgspec.json.encode(statement_out(found)),
                            media_type="application/json")

    return StatementController


class DifferenceOut(msgspec.Struct):
    kind: str
    provider: str
    match_key: str
    record: str
    provider_id: str | None
    reference: str | None
    journal_transactions: list[str]
    journal_amount_minor: int | None
    journal_currency: str | None
    provider_amount_minor: int | None
    provider_currency: str | None
    provider_status: str | None
    detail: str


class ReconciliationOut(msgspec.Struct):
    period: str
    period_start: datetime
    period_end: datetime
    providers: list[str]
    journal_movements: int
    provider_records: int
    clean: bool
    differences: list[DifferenceOut]
    notes: list[str]


def reconciliation_controller(settings: Settings) -> type[Controller]:
    """Staff's report; Stripe is read through its adapter when the exchange has a Stripe key."""
    zone = settings.exchange_zone
    stripe_records = None if not settings.stripe_api_key else \
        provider_reconciliation.StripeApiRecords(
            StripeProvider(settings.stripe_api_key, api_base=settings.stripe_api_base))

    class ReconciliationController(Controller):
        path = "/payments/reconciliation"
        opt = roles(Role.STAFF)
        dependencies = {"principal": Provide(provide_principal, sync_to_thread=False)}

        @get("/", opt=roles(Role.STAFF),
             summary="Every difference between the journal and the payment providers (staff)")
        async def reconciliation(self, period: FromQuery[str]) -> ReconciliationOut:
            parsed = statements.parse_period(period)
            start, end = statements.period_window(parsed, zone)
            report = await provider_reconciliation.reconcile(
                start, end, stripe_records_source=stripe_records)
            return ReconciliationOut(
                period=parsed.label, period_start=report.period_start,
                period_end=report.period_end, providers=list(report.providers),
                journal_movements=report.journal_movements,
                provider_records=report.provider_records, clean=not report.differences,
                differences=[DifferenceOut(
                    kind=d.kind.value, provider=d.provider, match_key=d.match_key,
                    record=d.record, provider_id=d.provider_id, reference=d.reference,
                    journal_transactions=list(d.journal_transactions),
                    journal_amount_minor=d.journal_amount_minor,
                    journal_currency=d.journal_currency,
                    provider_amount_minor=d.provider_amount_minor,
                    provider_currency=d.provider_currency, provider_status=d.provider_status,
                    detail=d.detail) for d in report.differences],
                notes=list(report.notes))

    return ReconciliationController
