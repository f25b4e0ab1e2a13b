"""Checkpoint anchoring on ExchangeLedger: who may anchor, growth of the tree size, lookups, gas."""

from __future__ import annotations

import hashlib

import pytest
from web3.logs import DISCARD

pytestmark = pytest.mark.chain

ZERO_HASH = bytes(32)
# The budget an exchange can afford once per checkpoint, whatever the size of its log.
ANCHOR_GAS_BUDGET = 60_000


def root_for(tree_size: int) -> bytes:
    """A distinct, non-zero stand-in for the RFC 6962 root of a tree of ``tree_size`` leaves."""
    return hashlib.sha256(b"root of tree size %d" % tree_size).digest()


def test_a_non_member_cannot_anchor(ledger, accounts, reverted):
    error = reverted(ledger.functions.anchor(1, root_for(1)), accounts.outsider)

    assert error == ("NotMember", (accounts.outsider,))


def test_the_admin_is_not_a_member_by_being_admin(ledger, accounts, reverted):
    error = reverted(ledger.functions.anchor(1, root_for(1)), accounts.admin)

    assert error == ("NotMember", (accounts.admin,))


def test_anchors_are_recorded_and_looked_up_by_tree_size(member_ledger, accounts, send):
    exchange = accounts.exchange_a
    functions = member_ledger.functions
    assert functions.latestAnchor(exchange).call() == [0, ZERO_HASH]

    for tree_size in (1, 7, 1_000):
        send(functions.anchor(tree_size, root_for(tree_size)), exchange)

    assert functions.latestAnchor(exchange).call() == [1_000, root_for(1_000)]
    assert functions.members(exchange).call()[1] == 1_000
    for tree_size in (1, 7, 1_000):
        assert functions.anchoredRoot(exchange, tree_size).call() == root_for(tree_size)
    for never_anchored in (0, 2, 999, 1_001):
        assert functions.anchoredRoot(exchange, never_anchored).call() == ZERO_HASH
    assert functions.anchoredRoot(accounts.exchange_b, 7).call() == ZERO_HASH


def test_an_anchor_emits_the_exchange_tree_size_and_root(member_ledger, accounts, send):
    receipt = send(member_ledger.functions.anchor(42, root_for(42)), accounts.exchange_a)

    (event,) = member_ledger.events.Anchored().process_receipt(receipt, errors=DISCARD)
    assert dict(event["args"]) == {
        "exchange": accounts.exchange_a,
        "treeSize": 42,
        "root": root_for(42),
    }
    assert event["address"] == member_ledger.address


@pytest.mark.parametrize("proposed_tree_size", [10, 9, 0], ids=["equal", "smaller", "zero"])
def test_the_tree_size_must_strictly_grow(
    member_ledger, accounts, send, reverted, proposed_tree_size
):
    send(member_ledger.functions.anchor(10, root_for(10)), accounts.exchange_a)

    error = reverted(
        member_ledger.functions.anchor(proposed_tree_size, root_for(proposed_tree_size)),
        accounts.exchange_a,
    )

    assert error == ("TreeSizeNotGrowing", (10, proposed_tree_size))
    assert member_ledger.functions.latestAnchor(accounts.exchange_a).call() == [10, root_for(10)]


def test_an_empty_first_anchor_is_rejected(member_ledger, accounts, reverted):
    # A log of size 0 has nothing to anchor; the first anchor must cover at least one leaf.
    error = reverted(member_ledger.functions.anchor(0, root_for(0)), accounts.exchange_a)

    assert error == ("TreeSizeNotGrowing", (0, 0))


def test_a_zero_root_is_rejected(member_ledger, accounts, reverted):
    assert reverted(member_ledger.functions.anchor(1, ZERO_HASH), accounts.exchange_a) == (
        "ZeroRoot",
        (),
    )


def test_each_member_anchors_its_own_log(member_ledger, accounts, send):
    send(member_ledger.functions.anchor(500, root_for(500)), accounts.exchange_a)

    # Exchange B's log is independent: its tree sizes do not compete with exchange A's.
    send(member_ledger.functions.anchor(3, root_for(3)), accounts.exchange_b)

    assert member_ledger.functions.latestAnchor(accounts.exchange_a).call() == [500, root_for(500)]
    assert member_ledger.functions.latestAnchor(accounts.exchange_b).call() == [3, root_for(3)]


def test_a_reverting_transaction_with_explicit_gas_is_mined_and_fails_silently(
    w3, member_ledger, accounts, send
):
    # The trap the other tests avoid: with gas given, web3 does not estimate, nothing raises,
    # and only the receipt's status tells that the anchor was refused.
    send(member_ledger.functions.anchor(10, root_for(10)), accounts.exchange_a)

    transaction_hash = member_ledger.functions.anchor(5, root_for(5)).transact(
        {"from": accounts.exchange_a, "gas": 100_000}
    )

    assert w3.eth.wait_for_transaction_receipt(transaction_hash)["status"] == 0
    assert member_ledger.functions.latestAnchor(accounts.exchange_a).call() == [10, root_for(10)]


@pytest.mark.parametrize(
    "first_tree_size",
    [1, 1_000_000, 2**40, 2**64 - 2],
    ids=["small", "million", "2^40", "uint64-max"],
)
def test_an_anchor_costs_at_most_60000_gas_whatever_the_tree_size(
    member_ledger, accounts, send, first_tree_size
):
    first = send(
        member_ledger.functions.anchor(first_tree_size, root_for(first_tree_size)),
        accounts.exchange_a,
    )
    steady = send(
        member_ledger.functions.anchor(first_tree_size + 1, root_for(first_tree_size + 1)),
        accounts.exchange_a,
    )

    assert first["gasUsed"] <= ANCHOR_GAS_BUDGET
    assert steady["gasUsed"] <= ANCHOR_GAS_BUDGET
