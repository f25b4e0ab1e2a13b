"""Property tests: the journal always balances, reversals net to zero, fees respect their bounds."""

from collections import defaultdict
from dataclasses import dataclass
from fractions import Fraction
from itertools import count
from math import floor

from hypothesis import event, given, settings
from hypothesis import strategies as st

from settlement.caps import effective_ceiling, excess_to_carry_forward
from settlement.fees import ServiceFeePolicy, Split, refund_portion, service_fee, split
from settlement.journal import (
    Journal,
    JournalTransaction,
    TransactionKind,
    balances,
    order_payment_received,
    order_settled,
    payout,
    refund,
    reverse,
    settled_refund,
)
from settlement.money import INT64_MAX, Money

# No deadline: example run time on a shared 2-core machine says nothing about correctness.
untimed = settings(deadline=None)

CURRENCIES = ("CNY", "USD")
POLICIES = {
    "CNY": ServiceFeePolicy(rate_bps=250, cap=Money(50_000, "CNY"), minimum=Money(100, "CNY")),
    "USD": ServiceFeePolicy(rate_bps=290, cap=Money(10_000, "USD")),
}

amounts = st.integers(min_value=0, max_value=INT64_MAX)


@st.composite
def fee_policies(draw: st.DrawFn) -> ServiceFeePolicy:
    cap_minor = draw(amounts)
    minimum_minor = draw(st.none() | st.integers(min_value=0, max_value=cap_minor))
    return ServiceFeePolicy(
        rate_bps=draw(st.integers(min_value=0, max_value=10_000)),
        cap=Money(cap_minor, "CNY"),
        minimum=None if minimum_minor is None else Money(minimum_minor, "CNY"),
    )


@untimed
@given(price_minor=amounts, policy=fee_policies())
def test_fee_never_exceeds_cap_or_price_and_split_adds_up(
    price_minor: int, policy: ServiceFeePolicy
) -> None:
    price = Money(price_minor, "CNY")
    result = split(price, policy)
    assert Money.zero("CNY") <= result.fee <= policy.cap
    assert result.fee <= price
    assert result.operator_revenue + result.fee == price
    # An independent computation in exact rationals: half up is floor(x + 1/2).
    proportional = floor(Fraction(price_minor * policy.rate_bps, 10_000) + Fraction(1, 2))
    floor_minor = 0 if policy.minimum is None else policy.minimum.amount_minor
    expected = min(max(proportional, floor_minor), policy.cap.amount_minor, price_minor)
    assert result.fee.amount_minor == expected


@untimed
@given(
    price_minor=st.integers(min_value=0, max_value=INT64_MAX - 1),
    step_minor=st.integers(min_value=1, max_value=10**9),
    policy=fee_policies(),
)
def test_fee_never_decreases_as_the_price_rises(
    price_minor: int, step_minor: int, policy: ServiceFeePolicy
) -> None:
    higher_minor = min(price_minor + step_minor, INT64_MAX)
    lower = service_fee(Money(price_minor, "CNY"), policy)
    assert lower <= service_fee(Money(higher_minor, "CNY"), policy)


@untimed
@given(
    price_minor=st.integers(min_value=1, max_value=10**15),
    policy=fee_policies(),
    data=st.data(),
)
def test_partial_refunds_sum_to_the_settled_split(
    price_minor: int, policy: ServiceFeePolicy, data: st.DataObject
) -> None:
    settled = split(Money(price_minor, "CNY"), policy)
    remaining = settled
    partial_refunds = data.draw(st.integers(min_value=0, max_value=6))
    while remaining.gross.is_positive:
        amount = remaining.gross.amount_minor
        if partial_refunds:
            partial_refunds -= 1
            amount = data.draw(st.integers(min_value=1, max_value=amount))
        portion = refund_portion(remaining, Money(amount, "CNY"))
        assert portion.fee <= remaining.fee
        assert portion.operator_revenue <= remaining.operator_revenue
        remaining = remaining - portion
    assert remaining == Split(Money.zero("CNY"), Money.zero("CNY"), Money.zero("CNY"))


@untimed
@given(
    approved=st.lists(st.integers(min_value=0, max_value=10**12), min_size=1, max_size=8),
    data=st.data(),
)
def test_carry_over_never_makes_a_ceiling_negative_or_larger(
    approved: list[int], data: st.DataObject
) -> None:
    excess = Money.zero("CNY")
    for approved_minor in approved:
        ceiling = Money(approved_minor, "CNY")
        effective = effective_ceiling(ceiling, excess)
        assert Money.zero("CNY") <= effective <= ceiling
        realised = Money(data.draw(st.integers(min_value=0, max_value=10**12)), "CNY")
        carried = excess_to_carry_forward(ceiling, excess, realised)
        # What is carried is exactly what neither this ceiling nor the deduction absorbed.
        assert carried.amount_minor == max(
            0, realised.amount_minor + excess.amount_minor - approved_minor
        )
        excess = carried


# --- random trade sequences against the journal -----------------------------------------------


@dataclass
class Order:
    number: int
    currency: str
    buyer: str
    operator: str
    provider: str
    price: Money
    held: Money  # paid and not yet settled or refunded
    settled: Split | None = None
    paid_out: bool = False

    @property
    def payable(self) -> bool:
        return (
            self.settled is not None
            and self.settled.operator_revenue.is_positive
            and not self.paid_out
        )


def _assert_journal_invariants(journal: Journal) -> None:
    totals: defaultdict[str, int] = defaultdict(int)
    for (_, currency), balance in journal.balances().items():
        totals[currency] += balance
    assert all(total == 0 for total in totals.values()), totals
    for transaction in journal:
        for currency in {p.amount.currency for p in transaction.postings}:
            assert (
                sum(
                    p.signed_amount_minor
                    for p in transaction.postings
                    if p.amount.currency == currency
                )
                == 0
            )


OPERATIONS = ("order", "pay", "settle", "refund", "settled_refund", "payout", "reverse", "replay")


@settings(deadline=None, max_examples=150)
@given(data=st.data())
def test_random_trade_sequences_keep_the_journal_balanced(data: st.DataObject) -> None:
    journal = Journal()
    orders: list[Order] = []
    keys = count()

    def post(transaction: JournalTransaction) -> None:
        assert journal.post(transaction)

    for _ in range(data.draw(st.integers(min_value=1, max_value=40))):
        new_key = f"tx-{next(keys)}"
        unpaid = [o for o in orders if o.held.is_zero and o.settled is None]
        holding = [o for o in orders if o.held.is_positive]
        refundable = [o for o in orders if o.settled is not None and o.settled.gross.is_positive]
        reversible = [
            t
            for t in journal
            if t.kind is not TransactionKind.REVERSAL and not journal.is_reversed(t.idempotency_key)
        ]
        # Only operations that have something to act on, so every step does something.
        available = {
            "order": True,
            "pay": bool(unpaid),
            "settle": bool(holding),
            "refund": bool(holding),
            "settled_refund": bool(refundable),
            "payout": any(o.payable for o in orders),
            "reverse": bool(reversible),
            "replay": len(journal) > 0,
        }
        operation = data.draw(st.sampled_from([op for op in OPERATIONS if available[op]]))
        if operation == "order":
            currency = data.draw(st.sampled_from(CURRENCIES))
            price = Money(data.draw(st.integers(min_value=1, max_value=10**12)), currency)
            orders.append(
                Order(
                    number=len(orders),
                    currency=currency,
                    buyer=data.draw(st.sampled_from(["buyer-a", "buyer-b"])),
                    operator=data.draw(st.sampled_from(["operator-a", "operator-b"])),
                    provider=data.draw(st.sampled_from(["bank_transfer", "stripe"])),
                    price=price,
                    held=Money.zero(currency),
                )
            )
        elif operation == "pay":
            order = data.draw(st.sampled_from(unpaid))
            post(
                order_payment_received(
                    idempotency_key=new_key,
                    reference=f"order:{order.number}",
                    buyer_org_id=order.buyer,
                    provider=order.provider,
                    amount=order.price,
                )
            )
            order.held = order.price
        elif operation == "settle":
            order = data.draw(st.sampled_from(holding))
            order.settled = split(order.held, POLICIES[order.currency])
            post(
                order_settled(
                    idempotency_key=new_key,
                    reference=f"order:{order.number}",
                    buyer_org_id=order.buyer,
                    operator_org_id=order.operator,
                    split=order.settled,
                )
            )
            order.held = Money.zero(order.currency)
        elif operation == "refund":
            order = data.draw(st.sampled_from(holding))
            amount = Money(
                data.draw(st.integers(min_value=1, max_value=order.held.amount_minor)),
                order.currency,
            )
            post(
                refund(
                    idempotency_key=new_key,
                    reference=f"order:{order.number}",
                    buyer_org_id=order.buyer,
                    provider=order.provider,
                    amount=amount,
                )
            )
            order.held = order.held - amount
        elif operation == "settled_refund":
            order = data.draw(st.sampled_from(refundable))
            assert order.settled is not None
            refund_minor = data.draw(
                st.integers(min_value=1, max_value=order.settled.gross.amount_minor)
            )
            portion = refund_portion(order.settled, Money(refund_minor, order.currency))
            post(
                settled_refund(
                    idempotency_key=new_key,
                    reference=f"order:{order.number}",
                    operator_org_id=order.operator,
                    provider=order.provider,
                    portion=portion,
                )
            )
            order.settled = order.settled - portion
        elif operation == "payout":
            order = data.draw(st.sampled_from([o for o in orders if o.payable]))
            assert order.settled is not None
            post(
                payout(
                    idempotency_key=new_key,
                    reference=f"payout:{order.number}",
                    operator_org_id=order.operator,
                    provider=order.provider,
                    amount=order.settled.operator_revenue,
                )
            )
            order.paid_out = True
        elif operation == "reverse":
            original = data.draw(st.sampled_from(reversible))
            before = journal.balances()
            post(reverse(original, new_key))
            after = journal.balances()
            # The reversal takes away exactly what the original added.
            for (account, currency), effect in balances([original]).items():
                assert after[(account, currency)] == before[(account, currency)] - effect
        elif operation == "replay":
            before = journal.balances()
            posted_before = len(journal)
            assert not journal.post(data.draw(st.sampled_from(list(journal))))
            assert (journal.balances(), len(journal)) == (before, posted_before)
        _assert_journal_invariants(journal)
    event(f"{len(journal)} transactions posted")


@untimed
@given(data=st.data())
def test_any_transaction_and_its_reversal_net_to_zero(data: st.DataObject) -> None:
    currency = data.draw(st.sampled_from(CURRENCIES))
    price = Money(data.draw(st.integers(min_value=1, max_value=INT64_MAX)), currency)
    policy = ServiceFeePolicy(
        rate_bps=data.draw(st.integers(min_value=0, max_value=10_000)),
        cap=Money(data.draw(amounts), currency),
    )
    original = data.draw(
        st.sampled_from(
            [
                order_payment_received(
                    idempotency_key="t",
                    reference="order:1",
                    buyer_org_id="b",
                    provider="p",
                    amount=price,
                ),
                order_settled(
                    idempotency_key="t",
                    reference="order:1",
                    buyer_org_id="b",
                    operator_org_id="o",
                    split=split(price, policy),
                ),
                settled_refund(
                    idempotency_key="t",
                    reference="order:1",
                    operator_org_id="o",
                    provider="p",
                    portion=split(price, policy),
                ),
            ]
        )
    )
    assert all(b == 0 for b in balances([original, reverse(original, "t-reversal")]).values())
