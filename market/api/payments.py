"""Money over HTTP: the Stripe webhook (public, verified on the raw body), staff confirming
bank receipts, the regulator approving fee caps and revenue ceilings, staff granting free-use
eligibility, and operators checking (and counting calls against) an access credential."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, Request, Router, get, post, put
from litestar.di import NamedDependency, Provide
from litestar.exceptions import HTTPException
from litestar.params import FromPath, JSONBody

from market.accounts.model import Role
from market.api.access import AUTHENTICATED, Caller, provide_principal, public, roles
from market.api.clearances import ClearanceController
from market.api.orders import (
    Config,
    GrantOut,
    OrderController,
    OrderOut,
    grant_out,
    order_out,
)
from market.api.payouts import PayoutController
from market.errors import ConflictError, InvalidInputError
from market.settings import Settings
from market.trading import delivery, late_payments, orders
from settlement import caps_service, eligibility_store
from settlement.caps import (
    ChargingUnit,
    Eligibility,
    FeeCap,
    Purpose,
    RevenueCeiling,
    RevenuePeriod,
)
from settlement.money import Money
from settlement.payments import bank_transfer
from settlement.payments.bank_transfer import BankTransferProvider
from settlement.payments.provider import PaymentStatus
from settlement.payments.webhooks import (
    PaymentUpdated,
    WebhookConfigurationError,
    WebhookVerificationError,
    receive_stripe_webhook,
)

Text = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=r"\S")]
Evidence = Annotated[str, msgspec.Meta(min_length=1, max_length=2000, pattern=r"\S")]
Minor = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
PositiveMinor = Annotated[int, msgspec.Meta(ge=1, le=2**63 - 1)]
Calls = Annotated[int, msgspec.Meta(ge=1, le=1_000_000)]


class BankReceiptIn(msgspec.Struct, forbid_unknown_fields=True):
    reference: Text
    bank_transaction_ref: Text
    amount_minor: PositiveMinor
    received_on: date
    currency: str = "CNY"


class BankReceiptOut(msgspec.Struct):
    reference: str
    recorded: bool
    amount_minor: int
    received_minor: int
    due_minor: int
    overpaid_minor: int
    paid: bool
    # Closed: the order was cancelled or expired, so everything received is credit to refund.
    closed: bool
    credit_minor: int
    order: OrderOut | None


class BankCreditOut(msgspec.Struct):
    reference: str
    order_id: str
    buyer_org_id: str
    currency: str
    received_minor: int
    closed: bool
    credit_minor: int


class FeeCapIn(msgspec.Struct, forbid_unknown_fields=True):
    product_id: UUID
    purpose: str
    unit: str
    cap_minor: Minor
    effective_from: date
    approval_reference: Text
    effective_to: date | None = None
    currency: str = "CNY"


class FeeCapOut(msgspec.Struct):
    id: int
    product_id: str
    purpose: str
    unit: str
    cap_minor: int
    currency: str
    effective_from: date
    effective_to: date | None


class CeilingIn(msgspec.Struct, forbid_unknown_fields=True):
    operator_id: UUID
    period: str
    operating_cost_minor: Minor
    permitted_profit_minor: Minor
    tax_minor: Minor
    approval_reference: Text
    currency: str = "CNY"


class CeilingOut(msgspec.Struct):
    id: int
    operator_id: str
    period: str
    version: int
    approved_minor: int
    currency: str


class EligibilityIn(msgspec.Struct, forbid_unknown_fields=True):
    buyer_org_id: UUID
    purposes: list[str]
    valid_from: date
    valid_to: date
    evidence: Evidence


class EligibilityOut(msgspec.Struct):
    id: UUID
    buyer_org_id: str
    purposes: list[str]
    valid_from: date
    valid_to: date


class AccessUseIn(msgspec.Struct, forbid_unknown_fields=True):
    secret: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    calls: Calls = 1
    # For a download token: the organisation downloading (the token is bound to the buyer).
    buyer_org_id: UUID | None = None


class ConnectedAccountIn(msgspec.Struct, forbid_unknown_fields=True):
    # Checked against Stripe's id form by the use case, so a bad id is a 422 naming the field.
    account_id: Annotated[str, msgspec.Meta(min_length=1, max_length=255)]


class ConnectedAccountOut(msgspec.Struct):
    organisation_id: UUID
    provider: str
    account_id: str
    leaf_index: int
    recorded_at: datetime


class WebhookOut(msgspec.Struct):
    received: bool
    outcome: str


def _now() -> datetime:
    return datetime.now(UTC)


def _credit_out(invoice: bank_transfer.InvoiceState) -> BankCreditOut:
    return BankCreditOut(
        reference=invoice.reference, order_id=invoice.order_id,
        buyer_org_id=invoice.buyer_org_id, currency=invoice.amount.currency,
        received_minor=invoice.received.amount_minor, closed=invoice.closed,
        credit_minor=invoice.credit_to_refund.amount_minor)


def _purpose(value: str) -> Purpose:
    # The wire uses the catalog's vocabulary ("industry"); settlement says industry_development.
    mapped = "industry_development" if value == "industry" else value
    try:
        return Purpose(mapped)
    except ValueError:
        raise InvalidInputError(f"unknown purpose {value!r}", field="purpose") from None


def _unit(value: str) -> ChargingUnit:
    try:
        return ChargingUnit(value)
    except ValueError:
        raise InvalidInputError(f"unknown charging unit {value!r}", field="unit") from None


class PaymentController(Controller):
    path = "/"
    tags = ["payments"]
    opt = AUTHENTICATED

    @post("/payments/stripe/webhook", opt=public(), status_code=200,
          summary="Stripe webhook: verified on the raw body, de-duplicated by event id")
    async def stripe_webhook(self, request: Request[Any, Any, Any], order_config: Config,
                             stripe_webhook_secret: NamedDependency[str | None],
                             ) -> WebhookOut:
        payload = await request.body()
        try:
            outcome = await receive_stripe_webhook(
                payload, request.headers.get("stripe-signature"), stripe_webhook_secret)
        except WebhookVerificationError as error:
            raise HTTPException(status_code=400, detail=str(error)) from error
        except WebhookConfigurationError as error:
            raise HTTPException(status_code=503, detail="card payments are not configured") \
                from error
        if isinstance(outcome, PaymentUpdated) and outcome.status is PaymentStatus.SUCCEEDED:
            order = await orders.payment_confirmed(outcome.order_id, order_config,
                                                   actor=f"stripe:{outcome.event_id}", now=_now())
            if order is not None:
                await late_payments.refund_unapplied_card_payments(
                    order.id, order_config, actor=f"stripe:{outcome.event_id}")
        return WebhookOut(received=True, outcome=type(outcome).__name__)

    @post("/payments/bank-transfer/receipts", opt=roles(Role.STAFF), status_code=200,
          summary="Confirm a bank receipt against an invoice reference (staff)")
    async def confirm_bank_receipt(self, principal: Caller, order_config: Config,
                                   data: JSONBody[BankReceiptIn]) -> BankReceiptOut:
        provider = order_config.providers[orders.PaymentMethod.BANK_TRANSFER]
        assert isinstance(provider, BankTransferProvider)
        actor = f"{principal.role.value}:{principal.organisation_id}"
        async with orders.settlement_rules():
            outcome = await provider.confirm_receipt(
                data.reference, bank_transaction_ref=data.bank_transaction_ref,
                amount=Money(data.amount_minor, data.currency), received_on=data.received_on,
                confirmed_by=actor)
        invoice = outcome.invoice
        order = None
        if invoice.is_paid:
            order = await orders.payment_confirmed(invoice.order_id, order_config, actor=actor,
                                                   now=_now())
        return BankReceiptOut(
            reference=invoice.reference, recorded=outcome.recorded,
            amount_minor=invoice.amount.amount_minor,
            received_minor=invoice.received.amount_minor, due_minor=invoice.due.amount_minor,
            overpaid_minor=invoice.overpaid.amount_minor, paid=invoice.is_paid,
            closed=invoice.closed, credit_minor=invoice.credit_to_refund.amount_minor,
            order=None if order is None else await order_out(order))

    @get("/payments/bank-transfer/credits", opt=roles(Role.STAFF),
         summary="Bank money owed back to buyers: over-payments and money that arrived for "
                 "cancelled or expired orders (staff)")
    async def bank_credits(self) -> list[BankCreditOut]:
        return [_credit_out(invoice) for invoice in await bank_transfer.invoices_with_credit()]

    @post("/payments/bank-transfer/invoices/{reference:str}/refund-credit",
          opt=roles(Role.STAFF), status_code=200,
          summary="Refund an invoice's credit to the buyer from the bank account (staff)")
    async def refund_bank_credit(self, principal: Caller, order_config: Config,
                                 reference: FromPath[str]) -> BankCreditOut:
        provider = order_config.providers[orders.PaymentMethod.BANK_TRANSFER]
        assert isinstance(provider, BankTransferProvider)
        async with orders.settlement_rules():
            if not bank_transfer.is_valid_reference(reference):
                raise InvalidInputError(f"{reference!r} is not a valid invoice reference",
                                        field="reference")
            refunded = await provider.refund_overpayment(
                reference, actor=f"{principal.role.value}:{principal.organisation_id}")
            if refunded is None:
                raise ConflictError("the invoice holds no credit to refund", field="reference")
            return _credit_out(await provider.invoice(reference))

    @post("/caps/fee-caps", opt=roles(Role.REGULATOR), status_code=201,
          summary="Approve a version of an upper-limit fee (上限收费标准) (regulator)")
    async def approve_fee_cap(self, principal: Caller, data: JSONBody[FeeCapIn]) -> FeeCapOut:
        async with orders.settlement_rules():
            cap = FeeCap(product_id=str(data.product_id), purpose=_purpose(data.purpose),
                         unit=_unit(data.unit), cap=Money(data.cap_minor, data.currency),
                         effective_from=data.effective_from, effective_to=data.effective_to)
            stored = await caps_service.approve_fee_cap(
                cap, approved_by=f"regulator:{principal.organisation_id}",
                approval_reference=data.approval_reference)
        return FeeCapOut(id=stored.id, product_id=stored.cap.product_id,
                         purpose=stored.cap.purpose.value, unit=stored.cap.unit.value,
                         cap_minor=stored.cap.cap.amount_minor, currency=stored.cap.cap.currency,
                         effective_from=stored.cap.effective_from,
                         effective_to=stored.cap.effective_to)

    @post("/caps/revenue-ceilings", opt=roles(Role.REGULATOR), status_code=201,
          summary="Approve an operator's maximum permitted revenue (最高准许收入) (regulator)")
    async def approve_ceiling(self, principal: Caller,
                              data: JSONBody[CeilingIn]) -> CeilingOut:
        async with orders.settlement_rules():
            ceiling = RevenueCeiling(
                operator_id=str(data.operator_id), period=RevenuePeriod(data.period),
                operating_cost=Money(data.operating_cost_minor, data.currency),
                permitted_profit=Money(data.permitted_profit_minor, data.currency),
                tax=Money(data.tax_minor, data.currency))
            stored = await caps_service.approve_revenue_ceiling(
                ceiling, approved_by=f"regulator:{principal.organisation_id}",
                approval_reference=data.approval_reference)
        return CeilingOut(id=stored.id, operator_id=stored.ceiling.operator_id,
                          period=stored.ceiling.period.label, version=stored.version,
                          approved_minor=stored.ceiling.approved.amount_minor,
                          currency=stored.ceiling.approved.currency)

    @post("/eligibilities", opt=roles(Role.STAFF), status_code=201,
          summary="Grant a buyer free use (有条件无偿) for public purposes, with evidence (staff)")
    async def grant_eligibility(self, principal: Caller,
                                data: JSONBody[EligibilityIn]) -> EligibilityOut:
        async with orders.settlement_rules():
            stored = await eligibility_store.grant(
                Eligibility(buyer_org_id=str(data.buyer_org_id),
                            purposes=frozenset(_purpose(p) for p in data.purposes),
                            valid_from=data.valid_from, valid_to=data.valid_to,
                            evidence=data.evidence),
                granted_by=f"staff:{principal.organisation_id}")
        grant = stored.eligibility
        return EligibilityOut(id=stored.id, buyer_org_id=grant.buyer_org_id,
                              purposes=sorted(p.value for p in grant.purposes),
                              valid_from=grant.valid_from, valid_to=grant.valid_to)

    @put("/operators/{organisation_id:uuid}/connected-account", opt=roles(Role.STAFF),
         status_code=200,
         summary="Record an operator's Stripe connected account for destination charges (staff)")
    async def record_connected_account(self, principal: Caller,
                                       organisation_id: FromPath[UUID],
                                       data: JSONBody[ConnectedAccountIn]) -> ConnectedAccountOut:
        account = await orders.record_connected_account(principal, organisation_id,
                                                        data.account_id, now=_now())
        return ConnectedAccountOut(organisation_id=account.organisation_id,
                                   provider=account.provider, account_id=account.account_id,
                                   leaf_index=account.leaf_index,
                                   recorded_at=account.recorded_at)

    @post("/access/use", opt=roles(Role.OPERATOR), status_code=200,
          summary="Check an access credential presented to the operator and count its calls")
    async def use_access(self, principal: Caller, data: JSONBody[AccessUseIn]) -> GrantOut:
        grant = await delivery.use(data.secret, operator_org_id=principal.organisation_id,
                                   buyer_org_id=data.buyer_org_id, calls=data.calls,
                                   now=_now())
        return grant_out(grant)



def orders_router(settings: Settings) -> Router:
    """Orders and payments, with the webhook secret they need (the order configuration is an
    app-wide dependency: ordering an offer needs it too)."""
    return Router(
        path="/",
        route_handlers=[OrderController, PaymentController, ClearanceController,
                        PayoutController],
        dependencies={
            "principal": Provide(provide_principal, sync_to_thread=False),
            "stripe_webhook_secret": Provide(lambda: settings.stripe_webhook_secret,
                                             sync_to_thread=False),
        },
    )
