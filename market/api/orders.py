"""Orders over HTTP: quote, place (with an ``Idempotency-Key``), see, cancel, accept, refund,
and the access credential of a delivered order. Buyers see their organisation's orders,
operators the orders of their products, staff and the regulator all; anyone else gets 404."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, HeaderParameter, JSONBody

from market.accounts.model import Role
from market.api.access import AUTHENTICATED, Caller, provide_principal, roles
from market.errors import InvalidInputError
from market.trading import delivery, orders, refund_records, refunds

Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=1000, pattern=r"\S")]
Limit = Annotated[int, msgspec.Meta(ge=1, le=500)]
IdempotencyKey = Annotated[str | None, HeaderParameter(name="Idempotency-Key", required=False)]


class TermIn(msgspec.Struct, forbid_unknown_fields=True):
    start: date
    end: date


class OrderCreate(msgspec.Struct, forbid_unknown_fields=True):
    product_id: UUID
    purpose: str
    unit: str
    quantity: int
    term: TermIn
    terms_accepted: bool
    payment_method: str = orders.PaymentMethod.BANK_TRANSFER.value

    def request(self) -> orders.OrderRequest:
        return orders.OrderRequest(
            product_id=self.product_id, purpose=self.purpose, unit=self.unit,
            quantity=self.quantity, term_start=self.term.start, term_end=self.term.end,
            terms_accepted=self.terms_accepted, payment_method=self.payment_method)


class RefundIn(msgspec.Struct, forbid_unknown_fields=True):
    reason: Reason
    # Part of the price; absent: everything not refunded yet (a full refund).
    amount_minor: Annotated[int, msgspec.Meta(ge=1, le=2**63 - 1)] | None = None


class RefundOut(msgspec.Struct):
    sequence: int
    currency: str
    amount_minor: int
    fee_minor: int
    operator_revenue_minor: int
    after_settlement: bool
    provider_refund_id: str | None
    reason: str
    leaf_index: int
    refunded_at: datetime


class TermOut(msgspec.Struct):
    start: date
    end: date


class QuoteOut(msgspec.Struct):
    product_id: UUID
    operator_org_id: UUID
    purpose: str
    unit: str
    quantity: int
    term: TermOut
    currency: str
    unit_price_minor: int
    cap_minor: int | None
    price_minor: int
    fee_minor: int
    operator_revenue_minor: int
    revenue_period: str | None
    delivery_form: str
    payment_method: str
    registration_code: str | None
    # The peer exchange that registered the product, when it is listed here by recognition.
    registered_at: str | None


class PaymentOut(msgspec.Struct):
    provider: str
    # Bank transfer: the invoice reference to quote on the transfer; Stripe: the PaymentIntent.
    reference: str | None
    client_secret: str | None = None


class GrantOut(msgspec.Struct):
    kind: str
    expires_at: datetime
    display_prefix: str | None
    call_quota: int | None
    calls_used: int
    seats: int | None
    revoked_at: datetime | None
    revocation_reason: str | None


class OrderOut(msgspec.Struct):
    id: UUID
    state: str
    buyer_org_id: UUID
    operator_org_id: UUID
    product_id: UUID
    purpose: str
    unit: str
    quantity: int
    term: TermOut
    currency: str
    unit_price_minor: int
    cap_minor: int | None
    price_minor: int
    fee_minor: int
    operator_revenue_minor: int
    revenue_period: str | None
    payment: PaymentOut | None
    grant: GrantOut | None
    refunded_minor: int
    registration_code: str | None
    registered_at: str | None
    expires_at: datetime
    created_at: datetime
    updated_at: datetime


class OrderEventOut(msgspec.Struct):
    from_state: str | None
    to_state: str
    actor: str
    leaf_index: int
    occurred_at: datetime


class CredentialOut(msgspec.Struct):
    """The only time the secret is shown: it is stored as a hash. Asking again replaces it."""

    secret: str
    grant: GrantOut


def quote_out(quote: orders.Quote) -> QuoteOut:
    return QuoteOut(
        product_id=quote.product_id, operator_org_id=quote.operator_org_id,
        purpose=quote.purpose.value, unit=quote.unit.value, quantity=quote.quantity,
        term=TermOut(quote.term_start, quote.term_end), currency=quote.split.gross.currency,
        unit_price_minor=quote.unit_price.amount_minor,
        cap_minor=None if quote.cap is None else quote.cap.amount_minor,
        price_minor=quote.split.gross.amount_minor, fee_minor=quote.split.fee.amount_minor,
        operator_revenue_minor=quote.split.operator_revenue.amount_minor,
        revenue_period=None if quote.revenue_period is None else quote.revenue_period.label,
        delivery_form=quote.delivery_form.value, payment_method=quote.payment_method.value,
        registration_code=quote.registration_code, registered_at=quote.registered_at)


def grant_out(grant: delivery.Grant) -> GrantOut:
    return GrantOut(kind=grant.kind.value, expires_at=grant.expires_at,
                    display_prefix=grant.display_prefix, call_quota=grant.call_quota,
                    calls_used=grant.calls_used, seats=grant.seats, revoked_at=grant.revoked_at,
                    revocation_reason=grant.revocation_reason)


async def order_out(order: orders.Order, client_secret: str | None = None) -> OrderOut:
    if order.state is orders.OrderState.AWAITING_PAYMENT:
        # Grants and refunds begin with payment: an order awaiting it has neither, which
        # spares the answer to a new order two reads.
        grant, refunded = None, []
    else:
        grant = await delivery.grant_for_order(order.id)
        refunded = await refund_records.refunds_of(order.id)
    payment = None if order.payment_provider is None else PaymentOut(
        provider=order.payment_provider, reference=order.payment_reference,
        client_secret=client_secret)
    return OrderOut(
        id=order.id, state=order.state.value, buyer_org_id=order.buyer_org_id,
        operator_org_id=order.operator_org_id, product_id=order.product_id,
        purpose=order.purpose, unit=order.unit, quantity=order.quantity,
        term=TermOut(order.term_start, order.term_end), currency=order.currency,
        unit_price_minor=order.unit_price_minor, cap_minor=order.cap_minor,
        price_minor=order.gross_minor, fee_minor=order.fee_minor,
        operator_revenue_minor=order.operator_revenue_minor,
        revenue_period=order.revenue_period, payment=payment,
        grant=None if grant is None else grant_out(grant),
        refunded_minor=sum(refund.portion.gross.amount_minor for refund in refunded),
        registration_code=order.registration_code, registered_at=order.registered_at,
        expires_at=order.expires_at,
        created_at=order.created_at, updated_at=order.updated_at)


def _now() -> datetime:
    return datetime.now(UTC)


Config = NamedDependency[orders.OrderConfig]


class OrderController(Controller):
    path = "/orders"
    tags = ["orders"]
    opt = AUTHENTICATED

    @post("/quote", opt=roles(Role.BUYER), status_code=200,
          summary="Price an order (price, fee, operator revenue, cap in force); writes nothing")
    async def quote_order(self, principal: Caller, order_config: Config,
                          data: JSONBody[OrderCreate]) -> QuoteOut:
        return quote_out(await orders.quote(principal, data.request(), order_config,
                                            now=_now()))

    @post("/", opt=roles(Role.BUYER), status_code=201,
          summary="Place an order (buyer); the Idempotency-Key header is required")
    async def place_order(self, request: Request[Any, Any, Any], order_config: Config,
                          data: JSONBody[OrderCreate],
                          idempotency_key: IdempotencyKey = None) -> Response[OrderOut]:
        # The caller is read from the request, not taken as the `Caller` dependency: Litestar
        # resolves two or more dependencies in an anyio task group, about 70 µs of CPU a
        # request on the exchange's busiest route. The route's guard decides access as before.
        principal = provide_principal(request)
        if idempotency_key is None:
            raise InvalidInputError("the Idempotency-Key header is required",
                                    field="Idempotency-Key")
        placed = await orders.place(principal, data.request(), idempotency_key, order_config,
                                    now=_now())
        # A replay answers exactly as the first request did.
        return Response(await order_out(placed.order, placed.client_secret), status_code=201)

    @get("/", summary="Orders the caller may see: its own (buyer), of its products (operator), "
                      "or all (staff, regulator)")
    async def list_orders(self, principal: Caller, limit: FromQuery[Limit] = 100,
                          ) -> list[OrderOut]:
        return [await order_out(order)
                for order in await orders.list_for(principal, limit=limit)]

    @get("/{order_id:uuid}", summary="One order")
    async def get_order(self, principal: Caller, order_id: FromPath[UUID]) -> OrderOut:
        return await order_out(await orders.get(principal, order_id))

    @get("/{order_id:uuid}/history", summary="The order's state changes with their ledger leaves")
    async def order_history(self, principal: Caller,
                            order_id: FromPath[UUID]) -> list[OrderEventOut]:
        await orders.get(principal, order_id)
        return [OrderEventOut(from_state=f, to_state=t, actor=a, leaf_index=i, occurred_at=at)
                for f, t, a, i, at in await orders.history(order_id)]

    @post("/{order_id:uuid}/cancel", opt=roles(Role.BUYER), status_code=200,
          summary="Cancel an unpaid order (buyer); its reserved revenue is released")
    async def cancel_order(self, principal: Caller, order_id: FromPath[UUID]) -> OrderOut:
        return await order_out(await orders.cancel(principal, order_id, now=_now()))

    @post("/{order_id:uuid}/accept", opt=roles(Role.BUYER), status_code=200,
          summary="Accept delivery (buyer): the order settles and completes")
    async def accept_order(self, principal: Caller, order_id: FromPath[UUID]) -> OrderOut:
        return await order_out(await orders.accept(principal, order_id, now=_now()))

    @post("/{order_id:uuid}/refund", opt=roles(Role.STAFF), status_code=200,
          summary="Refund a paid order, in part (amount_minor) or all that is left (staff): "
                  "journal, revenue, and the access grant once nothing is left")
    async def refund_order(self, principal: Caller, order_id: FromPath[UUID],
                           order_config: Config, data: JSONBody[RefundIn]) -> OrderOut:
        return await order_out(await refunds.refund_order(
            principal, order_id, order_config, reason=data.reason,
            amount_minor=data.amount_minor, now=_now()))

    @get("/{order_id:uuid}/refunds", summary="The order's refunds with their fee and operator "
                                             "shares and ledger leaves")
    async def order_refunds(self, principal: Caller, order_id: FromPath[UUID]) -> list[RefundOut]:
        await orders.get(principal, order_id)
        return [RefundOut(
            sequence=r.sequence, currency=r.portion.gross.currency,
            amount_minor=r.portion.gross.amount_minor, fee_minor=r.portion.fee.amount_minor,
            operator_revenue_minor=r.portion.operator_revenue.amount_minor,
            after_settlement=r.after_settlement, provider_refund_id=r.provider_refund_id,
            reason=r.reason, leaf_index=r.leaf_index, refunded_at=r.refunded_at)
            for r in await refund_records.refunds_of(order_id)]

    @post("/{order_id:uuid}/credential", opt=roles(Role.BUYER), status_code=200,
          summary="Issue the access credential of a delivered order (buyer); shown once, a "
                  "new call replaces it")
    async def issue_credential(self, principal: Caller,
                               order_id: FromPath[UUID]) -> CredentialOut:
        await orders.get(principal, order_id)
        issued = await delivery.issue_secret(order_id, buyer_org_id=principal.organisation_id,
                                             now=_now())
        return CredentialOut(secret=issued.secret, grant=grant_out(issued.grant))

