"""The orders use case against the real database: placement with its idempotency key, every
refusal writing nothing, payment by bank transfer, delivery, acceptance, settlement, refund,
cancellation and expiry."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from ledger.tables import LedgerLeaf
from listings import authorizations_service
from listings import repository as listings_repository
from listings.context import Actor
from market.errors import ConflictError, InvalidInputError, MarketError, NotFoundError
from market.trading import delivery, orders, refunds
from market.trading.order_tables import OrderRow
from settlement import caps_service, journal_store
from settlement.journal import EXCHANGE_FEES, EXCHANGE_REFUNDS, Account
from settlement.money import Money
from settlement.payments import attempts
from settlement.payments.bank_transfer import BankTransferProvider
from settlement.payments.provider import PaymentStatus
from settlement.tables import BankInvoiceRow, PaymentAttemptRow
from tests.integration.market.orders_setup import (
    Market,
    build_market,
    config,
    now,
    pay_and_deliver,
    principal,
    today,
)


async def _counts() -> tuple[int, int]:
    return await OrderRow.count().run(), await LedgerLeaf.count().run()


async def _written() -> tuple[int, int, int, int]:
    """Orders, ledger leaves, payment attempts and bank invoices."""
    return (*await _counts(), await PaymentAttemptRow.count().run(),
            await BankInvoiceRow.count().run())


async def test_place_is_idempotent_and_reserves_revenue(db: str) -> None:
    market = await build_market()
    cfg = config()
    buyer = principal(market.buyer)
    placed = await orders.place(buyer, market.request(), "key-1", cfg, now=now())
    order = placed.order
    assert placed.created
    assert order.state is orders.OrderState.AWAITING_PAYMENT
    # 10 calls × 500 fen, 5% fee.
    assert (order.gross_minor, order.fee_minor, order.operator_revenue_minor) == (5000, 250, 4750)
    assert order.payment_provider == "bank_transfer"
    assert order.payment_reference is not None
    assert order.payment_reference.startswith("PDX-")
    status = await caps_service.ceiling_status(str(market.operator.organisation.id),
                                               market.period)
    assert status.committed == Money(4750, "CNY")

    replay = await orders.place(buyer, market.request(), "key-1", cfg, now=now())
    assert (replay.order.id, replay.created) == (order.id, False)
    with pytest.raises(ConflictError) as conflict:
        await orders.place(buyer, market.request(quantity=11), "key-1", cfg, now=now())
    assert conflict.value.field == "Idempotency-Key"
    # Another buyer's identical key is its own.
    other = await orders.place(principal(market.other_buyer), market.request(), "key-1", cfg,
                               now=now())
    assert other.created
    assert other.order.id != order.id
    history = await orders.history(order.id)
    assert [(step[0], step[1]) for step in history] == [(None, "awaiting_payment")]


async def test_a_replay_answers_with_its_order_even_when_refused_now(db: str) -> None:
    market = await build_market()
    cfg, buyer = config(), principal(market.buyer)
    placed = await orders.place(buyer, market.request(), "key-1", cfg, now=now())
    before = await _written()
    assert (await orders.place(buyer, market.request(), "key-1", cfg, now=now())).order == \
        placed.order
    # A day later the term would start in the past: the request is refused as it stands, but
    # its key still answers with the order it placed, and another request under it with a 409.
    tomorrow = now() + timedelta(days=1)
    replay = await orders.place(buyer, market.request(), "key-1", cfg, now=tomorrow)
    assert (replay.order, replay.created) == (placed.order, False)
    with pytest.raises(ConflictError) as conflict:
        await orders.place(buyer, market.request(quantity=11), "key-1", cfg, now=tomorrow)
    assert conflict.value.field == "Idempotency-Key"
    with pytest.raises(InvalidInputError) as refused:  # a new key meets the refusal itself
        await orders.place(buyer, market.request(), "key-2", cfg, now=tomorrow)
    assert refused.value.field == "term.start"
    assert await _written() == before


async def test_concurrent_requests_under_one_key_place_one_order(db: str) -> None:
    market = await build_market()
    cfg, buyer = config(), principal(market.buyer)
    before = await _written()
    same = await asyncio.gather(*(orders.place(buyer, market.request(), "key-1", cfg, now=now())
                                  for _ in range(3)))
    assert len({placed.order.id for placed in same}) == 1
    assert sorted(placed.created for placed in same) == [False, False, True]
    different = await asyncio.gather(
        orders.place(buyer, market.request(), "key-2", cfg, now=now()),
        orders.place(buyer, market.request(quantity=11), "key-2", cfg, now=now()),
        return_exceptions=True)
    [placed] = [outcome for outcome in different if isinstance(outcome, orders.PlacedOrder)]
    [conflict] = [outcome for outcome in different if isinstance(outcome, ConflictError)]
    assert conflict.field == "Idempotency-Key"
    # Only the two orders placed hold revenue, a payment and a leaf: the losers rolled back.
    created = [same[0].order, placed.order]
    status = await caps_service.ceiling_status(str(market.operator.organisation.id),
                                               market.period)
    assert status.committed == Money(sum(order.operator_revenue_minor for order in created),
                                     "CNY")
    assert await _written() == tuple(count + 2 for count in before)


@pytest.mark.parametrize(("overrides", "field", "error"), [
    ({"quantity": 0}, "quantity", InvalidInputError),
    ({"terms_accepted": False}, "terms_accepted", InvalidInputError),
    ({"term_start": "past"}, "term.start", InvalidInputError),
    ({"purpose": "gambling"}, "purpose", InvalidInputError),
    ({"unit": "per_volume"}, "unit", InvalidInputError),
    ({"product_id": "unknown"}, "product_id", NotFoundError),
    ({"purpose": "public_welfare"}, "purpose", MarketError),
    ({"payment_method": "card"}, "payment_method", InvalidInputError),
])
async def test_bad_orders_name_the_field_and_write_nothing(
        db: str, overrides: dict[str, object], field: str, error: type[MarketError]) -> None:
    market = await build_market()
    if overrides.get("term_start") == "past":
        overrides["term_start"] = today() - timedelta(days=1)
    if overrides.get("product_id") == "unknown":
        overrides["product_id"] = market.buyer.organisation.id
    before = await _counts()
    with pytest.raises(error) as raised:
        await orders.place(principal(market.buyer), market.request(**overrides), "k", config(),
                           now=now())
    assert raised.value.field == field
    assert await _counts() == before


async def test_an_order_over_the_cap_in_force_is_refused(db: str) -> None:
    market = await build_market(price_minor=500, cap_minor=400)
    before = await _counts()
    with pytest.raises(ConflictError) as raised:
        await orders.place(principal(market.buyer), market.request(), "k", config(), now=now())
    assert raised.value.field == "product_id"
    assert "exceeds the approved cap" in raised.value.detail
    assert await _counts() == before


async def test_an_order_beyond_the_ceiling_is_refused(db: str) -> None:
    market = await build_market(ceiling_minor=4000)
    before = await _written()
    with pytest.raises(ConflictError) as raised:
        await orders.place(principal(market.buyer), market.request(), "k", config(), now=now())
    assert raised.value.field == "quantity"
    assert await _written() == before


@pytest.mark.parametrize("pooled", [False, True])
async def test_a_full_ceiling_refuses_inside_the_placing_statement(db: str, pooled: bool) -> None:
    """The order's revenue (4,750) fits the ceiling alone but not on top of what is committed,
    so the counter's check in the placing statement refuses it, after the order row and the
    invoice were written: the statement undoes them with itself. Pooled, as the API places
    orders, the statement is its own transaction; otherwise it runs in one of its own."""
    market = await build_market(ceiling_minor=10_000)
    operator_id = str(market.operator.organisation.id)
    assert await caps_service.reserve_revenue(operator_id, market.period, Money(6_000, "CNY"))
    before = await _written()
    engine = OrderRow._meta.db
    if pooled:
        await engine.start_connection_pool(min_size=1, max_size=2)
    try:
        with pytest.raises(ConflictError) as raised:
            await orders.place(principal(market.buyer), market.request(), "k", config(),
                               now=now())
    finally:
        if pooled:
            await engine.close_connection_pool()
    assert raised.value.field == "quantity"
    assert market.period.label in str(raised.value)
    assert await _written() == before
    assert (await caps_service.ceiling_status(operator_id, market.period)).committed \
        == Money(6_000, "CNY")


async def test_bank_transfer_to_completion_and_refund(db: str) -> None:
    market = await build_market()
    cfg = config()
    buyer = principal(market.buyer)
    order = (await orders.place(buyer, market.request(), "k", cfg, now=now())).order
    bank = cfg.providers[orders.PaymentMethod.BANK_TRANSFER]
    assert isinstance(bank, BankTransferProvider)
    assert order.payment_reference is not None
    partial = await bank.confirm_receipt(order.payment_reference, bank_transaction_ref="B1",
                                         amount=Money(2000, "CNY"), received_on=today(),
                                         confirmed_by="staff")
    assert not partial.invoice.is_paid
    with pytest.raises(ConflictError):  # money received: no cancelling under the buyer
        await orders.cancel(buyer, order.id, now=now())
    rest = await bank.confirm_receipt(order.payment_reference, bank_transaction_ref="B2",
                                      amount=Money(3000, "CNY"), received_on=today(),
                                      confirmed_by="staff")
    assert rest.became_paid
    delivered = await orders.payment_confirmed(str(order.id), cfg, actor="staff", now=now())
    assert delivered is not None
    assert delivered.state is orders.OrderState.DELIVERED
    grant = await delivery.grant_for_order(order.id)
    assert grant is not None
    assert grant.kind is delivery.GrantKind.API_KEY
    assert grant.call_quota == 10

    issued = await delivery.issue_secret(order.id, buyer_org_id=market.buyer.organisation.id,
                                         now=now())
    used = await delivery.use(issued.secret, operator_org_id=market.operator.organisation.id,
                              buyer_org_id=None, calls=10, now=now())
    assert used.calls_used == 10
    with pytest.raises(ConflictError):
        await delivery.use(issued.secret, operator_org_id=market.operator.organisation.id,
                           buyer_org_id=None, calls=1, now=now())
    with pytest.raises(NotFoundError):  # another operator cannot probe the secret
        await delivery.use(issued.secret, operator_org_id=market.buyer.organisation.id,
                           buyer_org_id=None, calls=1, now=now())

    completed = await orders.accept(buyer, order.id, now=now())
    assert completed.state is orders.OrderState.COMPLETED
    operator_payable = Account.operator_payable(str(market.operator.organisation.id))
    assert await journal_store.balance(EXCHANGE_FEES, "CNY") == -250
    assert await journal_store.balance(operator_payable, "CNY") == -4750
    assert await journal_store.balance(Account.buyer(str(market.buyer.organisation.id)),
                                       "CNY") == 0

    refunded = await refunds.refund_order(principal(market.staff), order.id, cfg,
                                          reason="数据质量不符", now=now())
    assert refunded.state is orders.OrderState.REFUNDED
    assert await journal_store.balance(operator_payable, "CNY") == 0
    assert await journal_store.balance(EXCHANGE_REFUNDS, "CNY") == 250
    assert await journal_store.unbalanced_currencies() == {}
    status = await caps_service.ceiling_status(str(market.operator.organisation.id),
                                               market.period)
    assert status.committed == Money(0, "CNY")
    revoked = await delivery.grant_for_order(order.id)
    assert revoked is not None
    assert revoked.revoked_at is not None
    again = await refunds.refund_order(principal(market.staff), order.id, cfg, reason="again",
                                       now=now())
    assert again.state is orders.OrderState.REFUNDED
    states = [step[1] for step in await orders.history(order.id)]
    assert states == ["awaiting_payment", "paid", "delivered", "accepted", "completed",
                      "refunded"]
    leaves = await LedgerLeaf.count().where(LedgerLeaf.subject == f"order:{order.id}").run()
    assert leaves == len(states)


async def test_cancel_and_expiry_release_the_revenue(db: str) -> None:
    market = await build_market()
    cfg = config()
    buyer = principal(market.buyer)
    operator_id = str(market.operator.organisation.id)
    first = (await orders.place(buyer, market.request(), "a", cfg, now=now())).order
    second = (await orders.place(buyer, market.request(), "b", cfg, now=now())).order
    with pytest.raises(NotFoundError):  # another buyer's order does not exist for it
        await orders.cancel(principal(market.other_buyer), first.id, now=now())
    cancelled = await orders.cancel(buyer, first.id, now=now())
    assert cancelled.state is orders.OrderState.CANCELLED
    assert (await caps_service.ceiling_status(operator_id, market.period)).committed \
        == Money(4750, "CNY")
    assert await orders.expire_unpaid(cfg, now=now()) == []  # not due yet
    expired = await orders.expire_unpaid(cfg, now=now() + cfg.unpaid_ttl + timedelta(seconds=1))
    assert expired == [second.id]
    assert (await caps_service.ceiling_status(operator_id, market.period)).committed \
        == Money(0, "CNY")


async def test_expiry_job_moves_an_order_whose_payment_succeeded_to_paid(db: str) -> None:
    """A payment that succeeded while its order stayed unpaid (the confirmation was interrupted
    before the order moved) is found by the job, due or not, and the order is paid and
    delivered, never expired; the orders still waiting are left alone until they are due."""
    market = await build_market()
    cfg = config()
    buyer = principal(market.buyer)
    interrupted = (await orders.place(buyer, market.request(), "paid", cfg, now=now())).order
    waiting = (await orders.place(buyer, market.request(), "waiting", cfg, now=now())).order
    assert interrupted.payment_provider is not None
    assert interrupted.payment_reference is not None
    _attempt, moved = await attempts.advance_status(
        interrupted.payment_provider, interrupted.payment_reference, PaymentStatus.SUCCEEDED)
    assert moved

    assert await orders.expire_unpaid(cfg, now=now()) == []
    assert (await orders.get(buyer, interrupted.id)).state is orders.OrderState.DELIVERED
    assert (await orders.get(buyer, waiting.id)).state is orders.OrderState.AWAITING_PAYMENT
    later = now() + cfg.unpaid_ttl + timedelta(seconds=1)
    assert await orders.expire_unpaid(cfg, now=later) == [waiting.id]
    assert (await orders.get(buyer, interrupted.id)).state is orders.OrderState.DELIVERED


async def _delivered(market: Market, key: str) -> orders.Order:
    placed = await orders.place(principal(market.buyer), market.request(), key, config(),
                                now=now())
    return await pay_and_deliver(placed.order, config())


async def _end_authorization(market: Market) -> None:
    record = await listings_repository.get_product(market.product_id)
    assert record is not None
    assert record.authorization_id is not None
    await authorizations_service.change_state(
        Actor(market.regulator.organisation.id, "regulator"), record.authorization_id,
        action="revoke", reason="违反授权条件", today=today())


async def test_access_ends_with_the_operators_authorization(db: str) -> None:
    """The job revokes the grants of products whose authorization ended, once, and leaves the
    grants of other operators' products and grants that ran out of term alone."""
    revoked_market, other_market = await build_market(), await build_market()
    revoked_order = await _delivered(revoked_market, "revoked")
    other_order = await _delivered(other_market, "other")
    assert await orders.revoke_grants_of_ended_authorizations(now=now()) == 0

    await _end_authorization(revoked_market)
    assert await orders.revoke_grants_of_ended_authorizations(now=now()) == 1
    revoked = await delivery.grant_for_order(revoked_order.id)
    assert revoked is not None
    assert revoked.revoked_at is not None
    assert revoked.revocation_reason == "the operator's authorization has ended"
    kept = await delivery.grant_for_order(other_order.id)
    assert kept is not None
    assert kept.revoked_at is None
    assert await orders.revoke_grants_of_ended_authorizations(now=now()) == 0

    # A grant past its term is no longer in force, so there is nothing to revoke.
    await _end_authorization(other_market)
    after_term = kept.expires_at + timedelta(seconds=1)
    assert await orders.revoke_grants_of_ended_authorizations(now=after_term) == 0
    ran_out = await delivery.grant_for_order(other_order.id)
    assert ran_out is not None
    assert ran_out.revoked_at is None


async def test_tenant_isolation(db: str) -> None:
    market = await build_market()
    order = (await orders.place(principal(market.buyer), market.request(), "k", config(),
                                now=now())).order
    assert (await orders.get(principal(market.operator), order.id)).id == order.id
    assert (await orders.get(principal(market.staff), order.id)).id == order.id
    with pytest.raises(NotFoundError):
        await orders.get(principal(market.other_buyer), order.id)
    assert await orders.list_for(principal(market.other_buyer)) == []
    assert [o.id for o in await orders.list_for(principal(market.buyer))] == [order.id]
