"""The orders use case (ARCHITECTURE "How a trade flows"): the rule that spans listings and
settlement, so it lives here and calls both inside one transaction.

Life of an order::

    (quote) → awaiting_payment ──paid──▶ paid ──grant──▶ delivered ──accept──▶ accepted
            │                                                                  │ settle
            ├─cancel─▶ cancelled     paid | delivered | accepted | completed   ▼
            └─expire─▶ expired              ──refund (staff)──▶ refunded     completed

Placing an order checks the listing and its operator's authorization, the buyer's purpose, grade
and (for free use) eligibility, the price from the listing against the cap in force, and splits
the fee; then one statement writes it all in one transaction (``trading_place_order``, a
database function): the order row, a bank transfer's invoice, the operator's revenue reserved
under its ceiling (a row lock, so concurrent orders cannot overshoot), and the ledger leaf last.
Being one statement, it holds the contended locks only until its own commit, never across a
round trip to the application. Every later state change is its own transaction ending in its
own ledger leaf. Outside payment providers (Stripe) are called only after a commit
(``settlement.payments.attempts``), never while a lock is held; a bank transfer invoice, a row
of ours, is written in the placing transaction.

Buyer clearance: a product's grade must be within the buyer's clearance in force
(``market.trading.clearances``, the register staff keep).
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from piccolo.columns import UUID, BigInt, Timestamptz, Varchar
from piccolo.table import Table

from ledger.canonical import canonical_json
from ledger.log import PreparedEntry, append_prepared, append_record, prepare_entry
from listings import repository as listings_repository
from listings.authorization import AuthorizationState
from listings.domains import ChargingUnit, DeliveryForm, Purpose
from listings.errors import DomainValueError
from listings.product import ProductState
from market.accounts.model import OrganisationKind, Principal, Role
from market.errors import (
    ConflictError,
    InvalidInputError,
    MarketError,
    NotFoundError,
    PermissionDeniedError,
)
from market.settings import Settings
from market.trading import clearances, delivery, refund_records
from market.trading.order_tables import connection, statement_connection
from settlement import caps as settlement_caps
from settlement import caps_service, eligibility_store, journal_store
from settlement.errors import (
    IdempotencyConflictError,
    IneligibleForFreeUseError,
    PaymentStateError,
    SettlementError,
    UnknownRecordError,
)
from settlement.fees import ServiceFeePolicy, Split, price_order, split
from settlement.journal import order_settled
from settlement.money import Money
from settlement.payments import attempts, bank_transfer
from settlement.payments.bank_transfer import BankTransferProvider
from settlement.payments.provider import PaymentProvider, PaymentRequest, PaymentStatus
from settlement.payments.stripe_provider import StripeProvider

LEDGER_KIND = "trading.order"


class OrderState(StrEnum):
    AWAITING_PAYMENT = "awaiting_payment"
    PAID = "paid"
    DELIVERED = "delivered"
    ACCEPTED = "accepted"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    REFUNDED = "refunded"


REFUNDABLE = frozenset({OrderState.PAID, OrderState.DELIVERED, OrderState.ACCEPTED,
                        OrderState.COMPLETED})


class PaymentMethod(StrEnum):
    BANK_TRANSFER = "bank_transfer"
    CARD = "card"  # through Stripe


def config_from_settings(settings: Settings) -> OrderConfig:
    """Bank transfer always; card payments through Stripe when its key is set."""
    providers: dict[PaymentMethod, PaymentProvider] = {
        PaymentMethod.BANK_TRANSFER: BankTransferProvider(settings.exchange_zone)}
    if settings.stripe_api_key:
        providers[PaymentMethod.CARD] = StripeProvider(settings.stripe_api_key,
                                                       api_base=settings.stripe_api_base)
    return OrderConfig(
        fee_policy=ServiceFeePolicy(rate_bps=settings.service_fee_bps,
                                    cap=Money(settings.service_fee_cap_minor, settings.currency)),
        zone=settings.exchange_zone,
        unpaid_ttl=timedelta(minutes=settings.unpaid_order_ttl_minutes),
        providers=providers)


def market_error(error: SettlementError) -> MarketError:
    """A settlement rule violation as the problem the API answers."""
    if isinstance(error, UnknownRecordError):
        return NotFoundError(error.message, field=error.field)
    if isinstance(error, IdempotencyConflictError | PaymentStateError):
        return ConflictError(error.message, field=error.field)
    return InvalidInputError(error.message, field=error.field)


@asynccontextmanager
async def settlement_rules() -> AsyncIterator[None]:
    try:
        yield
    except SettlementError as error:
        raise market_error(error) from error


@dataclass(frozen=True)
class OrderConfig:
    fee_policy: ServiceFeePolicy
    zone: ZoneInfo
    unpaid_ttl: timedelta
    # Providers by payment method; card is absent unless Stripe is configured.
    providers: dict[PaymentMethod, PaymentProvider]

    @property
    def currency(self) -> str:
        return self.fee_policy.currency

    def today(self, now: datetime) -> date:
        return now.astimezone(self.zone).date()


@dataclass(frozen=True)
class OrderRequest:
    product_id: uuid.UUID
    purpose: str
    unit: str
    quantity: int
    term_start: date
    term_end: date
    terms_accepted: bool
    payment_method: str = PaymentMethod.BANK_TRANSFER.value
    # A negotiated unit price (an accepted demand offer, market.trading.demands) instead of the
    # list price. It may only LOWER the list price, never raise it, and it is checked against
    # the cap in force and reserved under the operator's ceiling exactly as a list price is.
    unit_price_minor: int | None = None

    def fingerprint(self) -> str:
        """SHA-256 of the RFC 8785 form: equal exactly when two requests ask for the same."""
        return hashlib.sha256(canonical_json({
            "product_id": str(self.product_id), "purpose": self.purpose, "unit": self.unit,
            "quantity": str(self.quantity), "term_start": self.term_start.isoformat(),
            "term_end": self.term_end.isoformat(), "terms_accepted": self.terms_accepted,
            "payment_method": self.payment_method,
            # Only when set, so fingerprints of list-price orders already stored stay equal.
            **({} if self.unit_price_minor is None
               else {"unit_price_minor": str(self.unit_price_minor)}),
        })).hexdigest()


@dataclass(frozen=True)
class Quote:
    product_id: uuid.UUID
    operator_org_id: uuid.UUID
    purpose: Purpose
    unit: ChargingUnit
    quantity: int
    term_start: date
    term_end: date
    unit_price: Money
    cap: Money | None
    split: Split
    revenue_period: settlement_caps.RevenuePeriod | None
    # Read with the quote, so that placing the order reserves under it without reading again.
    ceiling_position: caps_service.CeilingStatus | None
    delivery_form: DeliveryForm
    payment_method: PaymentMethod
    # The product's registration code, and the peer exchange that registered it when it is
    # listed here by recognition (None: registered here), so a trade names both on the ledger.
    registration_code: str | None = None
    registered_at: str | None = None


@dataclass(frozen=True)
class Order:
    id: uuid.UUID
    buyer_org_id: uuid.UUID
    operator_org_id: uuid.UUID
    product_id: uuid.UUID
    purpose: str
    unit: str
    quantity: int
    term_start: date
    term_end: date
    currency: str
    unit_price_minor: int
    cap_minor: int | None
    gross_minor: int
    fee_minor: int
    operator_revenue_minor: int
    revenue_period: str | None
    state: OrderState
    payment_provider: str | None
    payment_reference: str | None
    expires_at: datetime
    created_at: datetime
    updated_at: datetime
    # Card orders of an operator with a Stripe connected account: the account the charge
    # transfers the operator's share to (a destination charge), pinned when the order is placed.
    payment_destination: str | None = None
    registration_code: str | None = None
    registered_at: str | None = None

    @property
    def split(self) -> Split:
        return Split(Money(self.gross_minor, self.currency), Money(self.fee_minor, self.currency),
                     Money(self.operator_revenue_minor, self.currency))

    @property
    def reference(self) -> str:
        return order_reference(self.id)


def order_reference(order_id: uuid.UUID) -> str:
    """How the ledger, the journal and payment providers name an order."""
    return f"order:{order_id}"


@dataclass(frozen=True)
class PlacedOrder:
    order: Order
    created: bool
    # Stripe: the PaymentIntent's client secret for the buyer's browser (never stored).
    client_secret: str | None = None


def _order(row: Any) -> Order:
    return Order(
        id=row["id"], buyer_org_id=row["buyer_org_id"], operator_org_id=row["operator_org_id"],
        product_id=row["product_id"], purpose=row["purpose"], unit=row["unit"],
        quantity=row["quantity"], term_start=row["term_start"], term_end=row["term_end"],
        currency=row["currency"].strip(), unit_price_minor=row["unit_price_minor"],
        cap_minor=row["cap_minor"], gross_minor=row["gross_minor"], fee_minor=row["fee_minor"],
        operator_revenue_minor=row["operator_revenue_minor"],
        revenue_period=row["revenue_period"], state=OrderState(row["state"]),
        payment_provider=row["payment_provider"], payment_reference=row["payment_reference"],
        expires_at=row["expires_at"], created_at=row["created_at"], updated_at=row["updated_at"],
        payment_destination=row.get("payment_destination"),
        registration_code=row.get("registration_code"), registered_at=row.get("registered_at"))


def _settlement_purpose(purpose: Purpose) -> settlement_caps.Purpose:
    # The listings vocabulary says "industry", the settlement one "industry_development".
    if purpose is Purpose.INDUSTRY:
        return settlement_caps.Purpose.INDUSTRY_DEVELOPMENT
    return settlement_caps.Purpose(purpose.value)


def _check_request(request: OrderRequest, config: OrderConfig, today: date) -> tuple[
        Purpose, ChargingUnit, PaymentMethod]:
    if request.terms_accepted is not True:
        raise InvalidInputError("the contract terms must be accepted", field="terms_accepted")
    if isinstance(request.quantity, bool) or request.quantity < 1:
        raise InvalidInputError("quantity must be a positive integer", field="quantity")
    if request.term_start < today:
        raise InvalidInputError(f"the term cannot start in the past (today is {today})",
                                field="term.start")
    if request.term_end < request.term_start:
        raise InvalidInputError("the term must not end before it starts", field="term.end")
    try:
        purpose = Purpose.from_wire(request.purpose, "purpose")
        unit = ChargingUnit.from_wire(request.unit, "unit")
    except DomainValueError as error:
        raise InvalidInputError(error.message, field=error.field) from error
    try:
        method = PaymentMethod(request.payment_method)
    except ValueError:
        raise InvalidInputError(
            f"payment_method must be one of {', '.join(m.value for m in PaymentMethod)}",
            field="payment_method") from None
    if method not in config.providers:
        raise InvalidInputError(f"{method.value} payments are not enabled at this exchange",
                                field="payment_method")
    return purpose, unit, method


async def quote(buyer: Principal, request: OrderRequest, config: OrderConfig, *,
                now: datetime) -> Quote:
    """Every check of placing an order, and its price, fee and revenue; writes nothing."""
    today = config.today(now)
    purpose, unit, method = _check_request(request, config, today)
    record = await _orderable_product(request.product_id, today)
    product = record.product
    if purpose not in product.permitted_purposes:
        raise InvalidInputError(f"{purpose.value} use is not permitted for this product",
                                field="purpose")
    await clearances.check_buyer_may_receive(buyer.organisation_id, product.grade, today)
    price = product.price_for(purpose, unit)
    if price is None:
        raise InvalidInputError(f"the product has no {unit.value} price for {purpose.value}",
                                field="unit")
    if price.currency != config.currency:
        raise ConflictError(f"the product is priced in {price.currency}", field="product_id")
    unit_price = Money(price.price_minor, price.currency)
    if request.unit_price_minor is not None:
        negotiated = request.unit_price_minor
        if isinstance(negotiated, bool) or not 0 <= negotiated <= price.price_minor:
            raise InvalidInputError(
                f"a negotiated price must be from 0 to the list price {price.price_minor}",
                field="unit_price_minor")
        unit_price = Money(negotiated, price.currency)
    async with settlement_rules():
        rules = None
        if purpose.is_conditionally_free:
            await _check_free_use(buyer, purpose, today)
        else:
            # The cap and the ceiling position in one round trip, read before the price is
            # checked, as a paid order needs both.
            rules = await caps_service.order_rules(
                str(record.id), _settlement_purpose(purpose),
                settlement_caps.ChargingUnit(unit.value), str(record.operator_id), today)
        cap = None if rules is None else _checked_cap(rules.cap, purpose, unit, unit_price)
        gross = price_order(unit_price, request.quantity)
        shares = split(gross, config.fee_policy)
    position = None
    if shares.operator_revenue.is_positive:  # a paid order: free use is priced at 0
        position = None if rules is None else rules.position
        if position is None:
            raise ConflictError(
                f"the operator has no approved maximum permitted revenue for {today:%Y-%m} or "
                f"{today:%Y}, so it cannot take paid orders", field="product_id")
    return Quote(product_id=record.id, operator_org_id=record.operator_id, purpose=purpose,
                 unit=unit, quantity=request.quantity, term_start=request.term_start,
                 term_end=request.term_end, unit_price=unit_price, cap=cap, split=shares,
                 revenue_period=None if position is None else position.period,
                 ceiling_position=position, delivery_form=product.delivery_form,
                 payment_method=method,
                 registration_code=None if record.registration_code is None
                 else str(record.registration_code),
                 registered_at=product.recognised_from)


async def _orderable_product(product_id: uuid.UUID,
                             today: date) -> listings_repository.ProductRecord:
    """The product, if it is listed and its operator's authorization is active and covers it."""
    found = await listings_repository.get_product_with_authorization(product_id)
    if found is None or found[0].product.state is not ProductState.LISTED:
        raise NotFoundError("no such listed product", field="product_id")
    record, authorization = found
    product = record.product
    if product.recognised_from is not None:
        # Listed on a peer's registration: the authorization is that exchange's, watched by
        # market.peering.recognitions, which delists here when it ends there.
        return record
    if authorization is None or authorization.authorization.state is not AuthorizationState.ACTIVE:
        raise ConflictError("the operator's authorization for this product is not active",
                            field="product_id")
    coverage = authorization.authorization.covers(
        product.domain, product.source_resource_codes, today, scenario=product.scenario)
    if coverage.gaps:
        raise ConflictError("the operator's authorization no longer covers this product: "
                            + "; ".join(gap.message for gap in coverage.gaps),
                            field="product_id")
    return record


async def _check_free_use(buyer: Principal, purpose: Purpose, today: date) -> None:
    """Free use needs the buyer's eligibility for the purpose, in term on ``today``."""
    try:
        await eligibility_store.check_buyer_free_use(
            str(buyer.organisation_id), _settlement_purpose(purpose), today)
    except IneligibleForFreeUseError as error:
        raise PermissionDeniedError(f"{error.message} ({error.reason})",
                                    field="purpose") from error


def _checked_cap(cap_version: settlement_caps.FeeCap | None, purpose: Purpose,
                 unit: ChargingUnit, unit_price: Money) -> Money:
    """Paid use needs a cap in force at or above the price; returns the cap."""
    if cap_version is None:
        raise ConflictError(
            f"no upper-limit fee is approved for {purpose.value} {unit.value} use of this "
            "product, so it cannot be sold", field="product_id")
    if unit_price > cap_version.cap:
        raise ConflictError(
            f"the listed price {unit_price.amount_minor} exceeds the approved cap "
            f"{cap_version.cap.amount_minor} {cap_version.cap.currency}", field="product_id")
    return cap_version.cap


async def _record_change(order: Order, from_state: OrderState | None, to_state: OrderState, *,
                         actor: str, detail: str, now: datetime) -> None:
    """The state change's ledger leaf, then its history row (which needs the leaf's index)."""
    leaf = await append_prepared(_change_entry(order, from_state, to_state, actor=actor,
                                               detail=detail, now=now))
    async with connection() as conn:
        await conn.execute(
            "INSERT INTO trading_order_events (order_id, from_state, to_state, actor, detail, "
            "leaf_index, occurred_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            order.id, None if from_state is None else from_state.value, to_state.value, actor,
            detail, leaf.leaf_index, now)


def _change_entry(order: Order, from_state: OrderState | None, to_state: OrderState, *,
                  actor: str, detail: str, now: datetime) -> PreparedEntry:
    """The ledger record of the order's move from ``from_state`` to ``to_state``."""
    return prepare_entry(
        LEDGER_KIND, actor=actor, subject=order.reference,
        payload={
            "order_id": str(order.id), "from_state": None if from_state is None
            else from_state.value, "to_state": to_state.value,
            "buyer_org_id": str(order.buyer_org_id),
            "operator_org_id": str(order.operator_org_id), "product_id": str(order.product_id),
            "purpose": order.purpose, "unit": order.unit, "quantity": str(order.quantity),
            "currency": order.currency, "gross_minor": str(order.gross_minor),
            "fee_minor": str(order.fee_minor),
            "operator_revenue_minor": str(order.operator_revenue_minor),
            "revenue_period": order.revenue_period, "detail": detail,
            **_registration(order),
        },
        recorded_at=now)


def _registration(order: Order) -> dict[str, str]:
    """A trade names the code it is made under and, for a product registered at a peer
    exchange, that exchange (互认互通: the trade is provable with the peer's code)."""
    named = {} if order.registration_code is None \
        else {"registration_code": order.registration_code}
    if order.registered_at is not None:
        named["registered_at"] = order.registered_at
    return named


def _actor(principal: Principal) -> str:
    # Ledger records name organisations, never people (minimal personal data on the log).
    return f"{principal.role.value}:{principal.organisation_id}"


def checked_idempotency_key(raw: str) -> str:
    key = raw.strip()
    if not key or len(key) > 255:
        raise InvalidInputError("the Idempotency-Key header must be 1 to 255 characters",
                                field="Idempotency-Key")
    return key


class IdempotencyKeyUsedError(Exception):
    """The order row met the buyer's key already taken (its unique index): the placing
    transaction must roll back, and the order placed under the key answers instead."""


# What a placing transaction under a key used before ends in: the key's unique index, or a
# refusal of the request as it stands now (the term has begun since, the offer is ordered). Either
# way the caller rolls back and asks ``order_placed_before``.
PLACING_REFUSALS = (IdempotencyKeyUsedError, MarketError)


async def order_for_key(buyer: Principal, key: str, fingerprint: str) -> Order | None:
    """The order already placed under this key (None when there is none). The same key with
    another request is a 409."""
    async with statement_connection() as conn:
        existing = await conn.fetchrow(
            "SELECT * FROM trading_orders WHERE buyer_org_id = $1 AND idempotency_key = $2",
            buyer.organisation_id, key)
    if existing is None:
        return None
    if existing["request_fingerprint"] != fingerprint:
        raise ConflictError("this Idempotency-Key was already used for a different order "
                            "request", field="Idempotency-Key")
    return _order(existing)


async def order_placed_before(buyer: Principal, key: str, fingerprint: str,
                              refusal: Exception) -> Order:
    """After a placing transaction under ``key`` rolled back with ``refusal`` (one of
    ``PLACING_REFUSALS``): the order the key already has, so that a replay answers as the first
    request did even when the request would be refused now; a 409 for another request; or the
    refusal itself when the key is new."""
    order = await order_for_key(buyer, key, fingerprint)
    if order is None:
        raise refusal
    return order


async def insert_order(buyer: Principal, request: OrderRequest, key: str, fingerprint: str,
                       config: OrderConfig, *, now: datetime) -> Order:
    """Price and check the order, then write it with its payment's rows, its revenue reservation
    and its ledger leaf in one statement: in the caller's transaction when one is open (an
    offer's order, ``demands.order_offer``), else in its own. IdempotencyKeyUsedError if the
    buyer placed an order under ``key`` already.

    The order row's unique (buyer, key) index is the one arbiter of a key, whichever route
    places the order: a request racing another with the same key waits on the index until the
    first commits, then finds the key taken. Checking for the key first would cost a lock and
    a read on every order, for the rare replay.
    """
    return await _insert(buyer, request, key, fingerprint, config, now=now)


async def after_placement(order: Order, *, created: bool, config: OrderConfig,
                          now: datetime) -> PlacedOrder:
    """After the placing transaction commits: start the payment of an unpaid order, or deliver
    a free one (also on a replay after a crash before either happened)."""
    client_secret = None
    if order.state is OrderState.AWAITING_PAYMENT and not _started_with_order(order, config):
        order, client_secret = await start_payment(order, config)
    elif order.state is OrderState.PAID:
        order = await deliver(order.id, config, now=now)
    return PlacedOrder(order=order, created=created, client_secret=client_secret)


async def place(buyer: Principal, request: OrderRequest, idempotency_key: str,
                config: OrderConfig, *, now: datetime) -> PlacedOrder:
    """Place the order (one statement, its own transaction), then start its payment when that
    needs an outside provider. A key used before answers with its order (or a 409 for a
    different request)."""
    key = checked_idempotency_key(idempotency_key)
    fingerprint = request.fingerprint()
    try:
        # No transaction around it: the reads of the quote need none (each check reads what is
        # committed, as it would inside one), and the writes are one statement of their own.
        order = await insert_order(buyer, request, key, fingerprint, config, now=now)
    except PLACING_REFUSALS as refusal:
        replayed = await order_placed_before(buyer, key, fingerprint, refusal)
        return await after_placement(replayed, created=False, config=config, now=now)
    return await after_placement(order, created=True, config=config, now=now)


# trading_place_order (market/piccolo_migrations/market_2026_11_25t11_20_00_000000.py): the
# order, its payment's rows, the revenue reservation, the ledger leaf and the history row.
_PLACE = (
    "SELECT trading_place_order($1::trading_new_order, $2::settlement_payment_attempt, "
    "$3::settlement_bank_invoice, $4::settlement_revenue_reservation, $5::ledger_entry, $6, $7)")
# What trading_place_order raises when the operator's ceiling has no room for the order.
_NO_ROOM_UNDER_CEILING = "PX001"
_PLACED_DETAIL = "placed; contract terms accepted"


async def _insert(buyer: Principal, request: OrderRequest, key: str, fingerprint: str,
                  config: OrderConfig, *, now: datetime) -> Order:
    offer = await quote(buyer, request, config, now=now)
    shares = offer.split
    # A free order needs no payment: it is placed already paid (有条件无偿).
    state = OrderState.PAID if shares.gross.is_zero else OrderState.AWAITING_PAYMENT
    destination = None
    if offer.payment_method is PaymentMethod.CARD and not shares.gross.is_zero:
        connected = await connected_account_of(offer.operator_org_id)
        destination = None if connected is None else connected.account_id
    order_id = uuid.uuid4()
    provider = None if shares.gross.is_zero else config.providers[offer.payment_method]
    payment = None
    if provider is not None and provider.in_database:
        # Made here and written by the placing statement, so that the order and its payment (a
        # bank transfer invoice) commit together and nothing is left for after the commit.
        async with settlement_rules():
            payment = await attempts.prepare_payment_start(provider, _payment_request(
                order_id, buyer.organisation_id, shares, destination))
    reservation = None
    if offer.ceiling_position is not None:
        async with settlement_rules():
            reservation = caps_service.reservation_within(offer.ceiling_position,
                                                          shares.operator_revenue)
        if reservation is None:
            raise _no_room(offer.ceiling_position.period)
    order = Order(
        id=order_id, buyer_org_id=buyer.organisation_id, operator_org_id=offer.operator_org_id,
        product_id=offer.product_id, purpose=offer.purpose.value, unit=offer.unit.value,
        quantity=offer.quantity, term_start=offer.term_start, term_end=offer.term_end,
        currency=shares.gross.currency, unit_price_minor=offer.unit_price.amount_minor,
        cap_minor=None if offer.cap is None else offer.cap.amount_minor,
        gross_minor=shares.gross.amount_minor, fee_minor=shares.fee.amount_minor,
        operator_revenue_minor=shares.operator_revenue.amount_minor,
        revenue_period=None if offer.revenue_period is None else offer.revenue_period.label,
        state=state, payment_provider=None if provider is None else provider.name,
        payment_reference=None if payment is None else payment.payment.provider_payment_id,
        expires_at=now + config.unpaid_ttl, created_at=now, updated_at=now,
        payment_destination=destination, registration_code=offer.registration_code,
        registered_at=offer.registered_at)
    actor = _actor(buyer)
    entry = _change_entry(order, None, state, actor=actor, detail=_PLACED_DETAIL, now=now)
    try:
        # One statement, which commits by itself unless a caller's transaction is open: the
        # contended locks it takes last are held to the commit without a round trip between.
        async with statement_connection() as conn:
            placed = await conn.fetchval(
                _PLACE, _new_order(order, buyer.user_id, key, fingerprint),
                None if payment is None else payment.attempt,
                None if payment is None else payment.provider_row, reservation,
                entry.argument, actor, _PLACED_DETAIL)
    except asyncpg.PostgresError as error:
        if error.sqlstate == _NO_ROOM_UNDER_CEILING and offer.revenue_period is not None:
            raise _no_room(offer.revenue_period) from None
        raise
    if not placed:
        raise IdempotencyKeyUsedError(key)
    return order


def _no_room(period: settlement_caps.RevenuePeriod) -> ConflictError:
    return ConflictError(
        f"the operator's maximum permitted revenue for {period.label} has no room for this "
        "order", field="quantity")


def _new_order(order: Order, placed_by: uuid.UUID, key: str,
               fingerprint: str) -> tuple[object, ...]:
    """The order as ``trading_new_order``."""
    return (
        order.id, order.buyer_org_id, placed_by, order.operator_org_id, order.product_id,
        order.purpose, order.unit, order.quantity, order.term_start, order.term_end,
        order.currency, order.unit_price_minor, order.cap_minor, order.gross_minor,
        order.fee_minor, order.operator_revenue_minor, order.revenue_period, order.state.value,
        order.payment_provider, order.payment_reference, order.payment_destination, key,
        fingerprint, order.expires_at, order.created_at, order.registration_code,
        order.registered_at)


async def start_payment(order: Order, config: OrderConfig) -> tuple[Order, str | None]:
    """Create (or find again, after a crash or a replay) the provider payment of an unpaid
    order: a bank transfer invoice with its reference, or a Stripe PaymentIntent."""
    provider = _provider_of(order, config)
    if provider is None:
        raise ConflictError(f"payment provider {order.payment_provider} is not configured",
                            field="payment_method")
    request = _payment_request(order.id, order.buyer_org_id, order.split,
                               order.payment_destination)
    async with settlement_rules():
        payment = await attempts.start_payment(provider, request)
    if order.payment_reference != payment.provider_payment_id:
        async with connection() as conn:
            row = await conn.fetchrow(
                "UPDATE trading_orders SET payment_reference = $2 WHERE id = $1 RETURNING *",
                order.id, payment.provider_payment_id)
        order = _order(row)
    return order, payment.client_secret


def _payment_request(order_id: uuid.UUID, buyer_org_id: uuid.UUID, shares: Split,
                     destination: str | None) -> PaymentRequest:
    # A destination charge keeps exactly the exchange's service fee, which the fee policy
    # capped when the order was priced (fees.split), and transfers the rest to the operator.
    return PaymentRequest(
        order_id=str(order_id), buyer_org_id=str(buyer_org_id), amount=shares.gross,
        idempotency_key=attempts.payment_idempotency_key(str(order_id)),
        description=order_reference(order_id), connected_account=destination,
        application_fee=None if destination is None else shares.fee)


def _provider_of(order: Order, config: OrderConfig) -> PaymentProvider | None:
    return next((p for p in config.providers.values() if p.name == order.payment_provider),
                None)


def _started_with_order(order: Order, config: OrderConfig) -> bool:
    """Whether the order's payment was started in the transaction that placed it (see
    ``_insert``), so that a replay has nothing left to start."""
    provider = _provider_of(order, config)
    return order.payment_reference is not None and provider is not None \
        and provider.in_database


async def _locked(conn: Any, order_id: uuid.UUID) -> Order | None:
    row = await conn.fetchrow("SELECT * FROM trading_orders WHERE id = $1 FOR UPDATE", order_id)
    return None if row is None else _order(row)


async def _move(conn: Any, order: Order, to_state: OrderState, *, actor: str, detail: str,
                now: datetime) -> Order:
    row = await conn.fetchrow(
        "UPDATE trading_orders SET state = $2, updated_at = $3 WHERE id = $1 RETURNING *",
        order.id, to_state.value, now)
    moved = _order(row)
    await _record_change(moved, order.state, to_state, actor=actor, detail=detail, now=now)
    return moved


async def mark_paid(order_id: uuid.UUID, config: OrderConfig, *, actor: str,
                    now: datetime) -> Order | None:
    """The provider confirmed payment: awaiting_payment → paid, then deliver. Repeats (a
    webhook delivered twice, staff confirming again) change nothing."""
    async with connection() as conn:
        order = await _locked(conn, order_id)
        if order is None:
            return None
        if order.state is not OrderState.AWAITING_PAYMENT:
            return order
        await _move(conn, order, OrderState.PAID, actor=actor, detail="payment confirmed",
                     now=now)
    return await deliver(order_id, config, now=now)


async def deliver(order_id: uuid.UUID, config: OrderConfig, *, now: datetime) -> Order:
    """paid → delivered: the access grant, valid to the end of the order's term."""
    async with connection() as conn:
        order = await _locked(conn, order_id)
        if order is None:
            raise NotFoundError("no such order", field="order_id")
        if order.state is not OrderState.PAID:
            return order
        record = await listings_repository.get_product(order.product_id)
        if record is None:
            raise NotFoundError("the ordered product vanished", field="product_id")
        term_ends = datetime.combine(order.term_end + timedelta(days=1), time.min,
                                     tzinfo=config.zone).astimezone(UTC)
        grant = await delivery.create_grant(
            order_id=order.id, buyer_org_id=order.buyer_org_id,
            operator_org_id=order.operator_org_id, product_id=order.product_id,
            form=record.product.delivery_form,
            unit=ChargingUnit.from_wire(order.unit, "unit"),
            quantity=order.quantity, expires_at=term_ends, now=now)
        return await _move(conn, order, OrderState.DELIVERED, actor="system:delivery",
                           detail=f"{grant.kind.value} granted until {term_ends.isoformat()}",
                           now=now)


async def get(principal: Principal, order_id: uuid.UUID) -> Order:
    """The order if the caller may see it: its buyer, the product's operator, staff or the
    regulator; anyone else is told it does not exist."""
    async with connection() as conn:
        row = await conn.fetchrow("SELECT * FROM trading_orders WHERE id = $1", order_id)
    if row is None or not _may_see(principal, _order(row)):
        raise NotFoundError("no such order", field="order_id")
    return _order(row)


def _may_see(principal: Principal, order: Order) -> bool:
    if principal.role in (Role.STAFF, Role.REGULATOR):
        return True
    if principal.role is Role.BUYER:
        return order.buyer_org_id == principal.organisation_id
    if principal.role is Role.OPERATOR:
        return order.operator_org_id == principal.organisation_id
    return False


async def list_for(principal: Principal, *, limit: int = 100) -> list[Order]:
    column = {Role.BUYER: "buyer_org_id", Role.OPERATOR: "operator_org_id"}.get(principal.role)
    if column is None and principal.role not in (Role.STAFF, Role.REGULATOR):
        return []
    async with connection() as conn:
        rows = await conn.fetch(
            # ``column`` is one of two constant names, never input.
            "SELECT * FROM trading_orders "  # noqa: S608
            + ("" if column is None else f"WHERE {column} = $2 ")
            + "ORDER BY created_at DESC, id LIMIT $1",
            limit, *([] if column is None else [principal.organisation_id]))
    return [_order(row) for row in rows]


async def history(order_id: uuid.UUID) -> list[tuple[str | None, str, str, int, datetime]]:
    async with connection() as conn:
        rows = await conn.fetch(
            "SELECT from_state, to_state, actor, leaf_index, occurred_at "
            "FROM trading_order_events WHERE order_id = $1 ORDER BY id", order_id)
    return [(r["from_state"], r["to_state"], r["actor"], r["leaf_index"], r["occurred_at"])
            for r in rows]


async def _buyers_locked(conn: Any, buyer: Principal, order_id: uuid.UUID) -> Order:
    order = await _locked(conn, order_id)
    if order is None or order.buyer_org_id != buyer.organisation_id:
        raise NotFoundError("no such order", field="order_id")
    return order


async def _release(order: Order) -> None:
    if order.revenue_period is None:
        return
    async with settlement_rules():
        await caps_service.release_revenue(
            str(order.operator_org_id), settlement_caps.RevenuePeriod(order.revenue_period),
            Money(order.operator_revenue_minor, order.currency))


async def _close_payment(order: Order, reason: str) -> None:
    """An order that can no longer be paid closes its bank invoice, so that money arriving
    later is the buyer's credit to refund, never a payment of it."""
    if order.payment_provider == bank_transfer.PROVIDER_NAME and order.payment_reference:
        await bank_transfer.close_invoice(order.payment_reference, reason=reason)


async def _money_received(order: Order) -> bool:
    return any(attempt.status in (PaymentStatus.PROCESSING, PaymentStatus.SUCCEEDED)
               for attempt in await attempts.attempts_for_order(str(order.id)))


async def cancel(buyer: Principal, order_id: uuid.UUID, *, now: datetime) -> Order:
    """The buyer withdraws an unpaid order; its reserved revenue is given back."""
    async with connection() as conn:
        order = await _buyers_locked(conn, buyer, order_id)
        if order.state is not OrderState.AWAITING_PAYMENT:
            raise ConflictError(f"an order that is {order.state.value} cannot be cancelled",
                                field="state")
        if await _money_received(order):
            raise ConflictError("money has been received for this order; ask staff for a "
                                "refund instead", field="state")
        await _release(order)
        await _close_payment(order, "order cancelled by the buyer")
        return await _move(conn, order, OrderState.CANCELLED, actor=_actor(buyer),
                           detail="cancelled by the buyer", now=now)


async def accept(buyer: Principal, order_id: uuid.UUID, *, now: datetime) -> Order:
    """The buyer accepts delivery (验收); the order then settles: the held price becomes the
    exchange's fee and the operator's payable, and the order is completed. A retry after a
    crash between the two steps finishes the settlement."""
    async with connection() as conn:
        order = await _buyers_locked(conn, buyer, order_id)
        if order.state is OrderState.DELIVERED:
            order = await _move(conn, order, OrderState.ACCEPTED, actor=_actor(buyer),
                                detail="delivery accepted", now=now)
        elif order.state not in (OrderState.ACCEPTED, OrderState.COMPLETED):
            raise ConflictError(f"an order that is {order.state.value} cannot be accepted",
                                field="state")
    return await settle(order_id, now=now)


async def settle(order_id: uuid.UUID, *, now: datetime) -> Order:
    """accepted → completed, posting the settlement; a destination charge's settlement also
    applies the transfer Stripe made at payment to the operator's payable, which so ends at
    zero (settlement.journal, destination charges)."""
    async with connection() as conn:
        order = await _locked(conn, order_id)
        if order is None:
            raise NotFoundError("no such order", field="order_id")
        if order.state is not OrderState.ACCEPTED:
            return order
        if order.gross_minor > 0:
            async with settlement_rules():
                await journal_store.post(order_settled(
                    idempotency_key=f"{order.reference}:settled", reference=order.reference,
                    buyer_org_id=str(order.buyer_org_id),
                    operator_org_id=str(order.operator_org_id),
                    split=await refund_records.remaining_split(order.id, order.split),
                    connected_account=order.payment_destination),
                    actor="system:settlement")
        return await _move(conn, order, OrderState.COMPLETED, actor="system:settlement",
                           detail="settled", now=now)


# Orders one run of the expiry job handles; the rest wait for the next run.
EXPIRY_BATCH = 500


async def expire_unpaid(config: OrderConfig, *, now: datetime) -> list[uuid.UUID]:
    """The beat job: orders unpaid past their deadline expire and give their revenue back;
    each in its own transaction. An order whose payment did succeed (a webhook or confirmation
    that was interrupted before the order moved) is moved to paid instead, due or not, and one
    with money partly received waits for staff rather than expiring under the buyer.

    Both lists are read by one query each (at most ``EXPIRY_BATCH`` rows), so a run costs
    little however many bank-transfer orders are waiting for their money."""
    async with connection() as conn:
        paid = await conn.fetch(
            "SELECT DISTINCT o.id FROM trading_orders o "
            "JOIN payment_attempts a ON a.order_id = o.id::text "
            "WHERE o.state = 'awaiting_payment' AND a.status = 'succeeded' LIMIT $1",
            EXPIRY_BATCH)
        due = await conn.fetch(
            "SELECT id FROM trading_orders WHERE state = 'awaiting_payment' "
            "AND expires_at <= $1 ORDER BY expires_at LIMIT $2", now, EXPIRY_BATCH)
    synced = {row["id"] for row in paid}
    for order_id in synced:
        await mark_paid(order_id, config, actor="system:payment-sync", now=now)
    expired: list[uuid.UUID] = []
    for row in due:
        order_id = row["id"]
        if order_id in synced:
            continue
        async with connection() as conn:
            locked = await conn.fetchrow(
                "SELECT * FROM trading_orders WHERE id = $1 AND state = 'awaiting_payment' "
                "AND expires_at <= $2 FOR UPDATE SKIP LOCKED", order_id, now)
            if locked is None:
                continue
            order = _order(locked)
            if await _money_received(order):
                continue
            await _release(order)
            await _close_payment(order, "order expired unpaid")
            await _move(conn, order, OrderState.EXPIRED, actor="system:expiry",
                        detail="unpaid at the payment deadline", now=now)
        expired.append(order_id)
    return expired


async def revoke_grants_of_ended_authorizations(*, now: datetime) -> int:
    """Access ends with the operator's authorization (退出机制): grants of products whose
    authorization is revoked or expired are revoked (a job, since listings knows nothing of
    orders)."""
    ended = await listings_repository.products_no_longer_sellable(
        await delivery.active_grant_products(now=now))
    if not ended:
        return 0
    return await delivery.revoke_for_products(
        ended, reason="the operator's authorization has ended", now=now)


# Stripe account ids: "acct_" and an alphanumeric tail (the migration checks the same).
CONNECTED_ACCOUNT_PATTERN = re.compile(r"acct_[A-Za-z0-9]{1,250}")
CONNECTED_ACCOUNT_KIND = "trading.connected_account"


class ConnectedAccountRow(Table, tablename="trading_connected_accounts"):
    """DDL: market/piccolo_migrations/market_2026_11_22t14_00_00_000000.py."""

    organisation_id = UUID(primary_key=True)
    provider = Varchar(length=32)
    account_id = Varchar(length=255)
    recorded_by = Varchar(length=200)
    leaf_index = BigInt()
    recorded_at = Timestamptz()


@dataclass(frozen=True)
class ConnectedAccount:
    organisation_id: uuid.UUID
    provider: str
    account_id: str
    recorded_by: str
    leaf_index: int
    recorded_at: datetime


def _connected(row: Any) -> ConnectedAccount:
    return ConnectedAccount(
        organisation_id=row["organisation_id"], provider=row["provider"],
        account_id=row["account_id"], recorded_by=row["recorded_by"],
        leaf_index=row["leaf_index"], recorded_at=row["recorded_at"])


async def connected_account_of(organisation_id: uuid.UUID) -> ConnectedAccount | None:
    async with connection() as conn:
        row = await conn.fetchrow(
            "SELECT * FROM trading_connected_accounts WHERE organisation_id = $1",
            organisation_id)
    return None if row is None else _connected(row)


async def record_connected_account(staff: Principal, organisation_id: uuid.UUID,
                                   account_id: str, *, now: datetime) -> ConnectedAccount:
    """Staff record (or replace) an operator organisation's Stripe connected account; its card
    orders placed from now on are destination charges to it. Ledgered: who pointed an
    operator's money where is exactly what an audit asks."""
    account_id = account_id.strip()
    if CONNECTED_ACCOUNT_PATTERN.fullmatch(account_id) is None:
        raise InvalidInputError("account_id must be a Stripe account id: acct_ followed by "
                                "letters and digits", field="account_id")
    async with connection() as conn:
        organisation = await conn.fetchrow(
            "SELECT kind FROM organisations WHERE id = $1 FOR SHARE", organisation_id)
        if organisation is None or organisation["kind"] != OrganisationKind.OPERATOR.value:
            raise NotFoundError("no such operator organisation", field="organisation_id")
        actor = _actor(staff)
        previous = await conn.fetchrow(
            "SELECT account_id FROM trading_connected_accounts WHERE organisation_id = $1 "
            "FOR UPDATE", organisation_id)
        if previous is not None and previous["account_id"] == account_id:
            existing = await connected_account_of(organisation_id)
            assert existing is not None
            return existing
        leaf = await append_record(
            CONNECTED_ACCOUNT_KIND, actor=actor, subject=f"operator:{organisation_id}",
            payload={"organisation_id": str(organisation_id), "provider": "stripe",
                     "account_id": account_id,
                     "replaces": None if previous is None else previous["account_id"]},
            recorded_at=now)
        row = await conn.fetchrow(
            "INSERT INTO trading_connected_accounts (organisation_id, provider, account_id, "
            "recorded_by, leaf_index, recorded_at) VALUES ($1, 'stripe', $2, $3, $4, $5) "
            "ON CONFLICT (organisation_id) DO UPDATE SET account_id = EXCLUDED.account_id, "
            "recorded_by = EXCLUDED.recorded_by, leaf_index = EXCLUDED.leaf_index, "
            "recorded_at = EXCLUDED.recorded_at RETURNING *",
            organisation_id, account_id, actor, leaf.leaf_index, now)
    return _connected(row)


async def payment_confirmed(order_id: str, config: OrderConfig, *, actor: str,
                            now: datetime) -> Order | None:
    """A provider says an order's payment succeeded (bank receipt, Stripe webhook)."""
    try:
        parsed = uuid.UUID(order_id)
    except ValueError:
        return None
    return await mark_paid(parsed, config, actor=actor, now=now)

