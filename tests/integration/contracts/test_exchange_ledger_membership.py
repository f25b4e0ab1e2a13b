"""Consortium administration on ExchangeLedger: the admin, admission, suspension, reinstatement."""

from __future__ import annotations

import pytest
from web3.logs import DISCARD

pytestmark = pytest.mark.chain

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
MEMBER_STATUS_ACTIVE = 1
MEMBER_STATUS_SUSPENDED = 2


def test_deployer_is_the_admin_and_the_consortium_starts_empty(ledger, accounts):
    assert ledger.functions.admin().call() == accounts.admin
    assert ledger.functions.pendingAdmin().call() == ZERO_ADDRESS
    assert ledger.functions.memberCount().call() == 0
    assert ledger.functions.isMember(accounts.admin).call() is False


def test_admin_admits_a_member_under_its_log_origin(ledger, accounts, origins, send):
    receipt = send(
        ledger.functions.admitMember(accounts.exchange_a, origins.exchange_a), accounts.admin
    )

    (event,) = ledger.events.MemberAdmitted().process_receipt(receipt, errors=DISCARD)
    assert event["args"]["exchange"] == accounts.exchange_a
    assert event["args"]["origin"] == origins.exchange_a
    status, latest_tree_size, admitted_at_block, origin = ledger.functions.members(
        accounts.exchange_a
    ).call()
    assert (status, latest_tree_size, origin) == (MEMBER_STATUS_ACTIVE, 0, origins.exchange_a)
    assert admitted_at_block == receipt["blockNumber"]
    assert ledger.functions.isMember(accounts.exchange_a).call() is True
    assert ledger.functions.isActiveMember(accounts.exchange_a).call() is True
    assert ledger.functions.memberCount().call() == 1
    assert ledger.functions.memberAt(0).call() == accounts.exchange_a
    assert ledger.functions.memberByOrigin(origins.exchange_a).call() == accounts.exchange_a
    assert ledger.functions.memberByOrigin(origins.exchange_b).call() == ZERO_ADDRESS


def test_only_the_admin_admits_members(ledger, accounts, origins, reverted):
    error = reverted(
        ledger.functions.admitMember(accounts.exchange_a, origins.exchange_a), accounts.outsider
    )

    assert error == ("NotAdmin", (accounts.outsider,))
    assert ledger.functions.isMember(accounts.exchange_a).call() is False


def test_an_exchange_is_admitted_once(member_ledger, accounts, reverted):
    error = reverted(
        member_ledger.functions.admitMember(accounts.exchange_a, "another.example/log"),
        accounts.admin,
    )

    assert error == ("MemberAlreadyAdmitted", (accounts.exchange_a,))


def test_a_log_origin_belongs_to_one_member(member_ledger, accounts, origins, reverted):
    error = reverted(
        member_ledger.functions.admitMember(accounts.outsider, origins.exchange_a), accounts.admin
    )

    assert error == ("OriginAlreadyAdmitted", (origins.exchange_a, accounts.exchange_a))


@pytest.mark.parametrize(
    ("origin", "expected"),
    [
        ("", ("EmptyOrigin", ())),
        ("o" * 257, ("OriginTooLong", (257, 256))),
        # Length is counted in UTF-8 bytes: 86 three-byte characters are 258 bytes.
        ("账" * 86, ("OriginTooLong", (258, 256))),
    ],
)
def test_admission_rejects_an_empty_or_oversized_origin(
    ledger, accounts, reverted, origin, expected
):
    assert reverted(ledger.functions.admitMember(accounts.exchange_a, origin), accounts.admin) == (
        expected
    )


def test_admission_rejects_the_zero_address(ledger, accounts, reverted):
    error = reverted(ledger.functions.admitMember(ZERO_ADDRESS, "x.example/log"), accounts.admin)

    assert error == ("ZeroAddress", ())


def test_admin_handover_takes_effect_only_when_accepted(ledger, accounts, send, reverted):
    new_admin = accounts.exchange_b
    assert reverted(ledger.functions.transferAdmin(new_admin), accounts.outsider) == (
        "NotAdmin",
        (accounts.outsider,),
    )

    started = send(ledger.functions.transferAdmin(new_admin), accounts.admin)

    (event,) = ledger.events.AdminTransferStarted().process_receipt(started, errors=DISCARD)
    assert dict(event["args"]) == {"currentAdmin": accounts.admin, "pendingAdmin": new_admin}
    assert ledger.functions.admin().call() == accounts.admin
    assert ledger.functions.pendingAdmin().call() == new_admin
    assert reverted(ledger.functions.acceptAdmin(), accounts.outsider) == (
        "NotPendingAdmin",
        (accounts.outsider,),
    )

    accepted = send(ledger.functions.acceptAdmin(), new_admin)

    (event,) = ledger.events.AdminTransferred().process_receipt(accepted, errors=DISCARD)
    assert dict(event["args"]) == {"previousAdmin": accounts.admin, "newAdmin": new_admin}
    assert ledger.functions.admin().call() == new_admin
    assert ledger.functions.pendingAdmin().call() == ZERO_ADDRESS
    assert reverted(
        ledger.functions.admitMember(accounts.exchange_a, "a.example/log"), accounts.admin
    ) == ("NotAdmin", (accounts.admin,))
    send(ledger.functions.admitMember(accounts.exchange_a, "a.example/log"), new_admin)


def test_admin_cannot_be_handed_to_the_zero_address(ledger, accounts, reverted):
    assert reverted(ledger.functions.transferAdmin(ZERO_ADDRESS), accounts.admin) == (
        "ZeroAddress",
        (),
    )


def test_suspension_stops_a_member_and_keeps_its_history(member_ledger, accounts, send, reverted):
    root = bytes.fromhex("aa" * 32)
    leaf_hash = bytes.fromhex("bb" * 32)
    send(member_ledger.functions.anchor(3, root), accounts.exchange_a)
    send(member_ledger.functions.registerCode("GZ-0001", 0, leaf_hash), accounts.exchange_a)

    receipt = send(member_ledger.functions.suspendMember(accounts.exchange_a), accounts.admin)

    (event,) = member_ledger.events.MemberSuspended().process_receipt(receipt, errors=DISCARD)
    assert event["args"]["exchange"] == accounts.exchange_a
    assert member_ledger.functions.members(accounts.exchange_a).call()[0] == (
        MEMBER_STATUS_SUSPENDED
    )
    assert member_ledger.functions.isMember(accounts.exchange_a).call() is True
    assert member_ledger.functions.isActiveMember(accounts.exchange_a).call() is False
    assert reverted(member_ledger.functions.anchor(4, root), accounts.exchange_a) == (
        "MemberNotActive",
        (accounts.exchange_a,),
    )
    assert reverted(
        member_ledger.functions.registerCode("GZ-0002", 1, leaf_hash), accounts.exchange_a
    ) == ("MemberNotActive", (accounts.exchange_a,))
    assert reverted(
        member_ledger.functions.registerCodes(["GZ-0002"], [1], [leaf_hash]), accounts.exchange_a
    ) == ("MemberNotActive", (accounts.exchange_a,))
    # What the member recorded before its suspension stays verifiable by peers.
    assert member_ledger.functions.latestAnchor(accounts.exchange_a).call() == [3, root]
    assert member_ledger.functions.lookupCode("GZ-0001").call() == [
        accounts.exchange_a,
        0,
        leaf_hash,
        True,
    ]


def test_reinstatement_lets_a_suspended_member_anchor_again(
    member_ledger, accounts, send, reverted
):
    root = bytes.fromhex("cc" * 32)
    send(member_ledger.functions.anchor(5, root), accounts.exchange_a)
    send(member_ledger.functions.suspendMember(accounts.exchange_a), accounts.admin)

    receipt = send(member_ledger.functions.reinstateMember(accounts.exchange_a), accounts.admin)

    (event,) = member_ledger.events.MemberReinstated().process_receipt(receipt, errors=DISCARD)
    assert event["args"]["exchange"] == accounts.exchange_a
    assert member_ledger.functions.isActiveMember(accounts.exchange_a).call() is True
    # The tree-size history survives the suspension: no replay of an older checkpoint.
    assert reverted(member_ledger.functions.anchor(5, root), accounts.exchange_a) == (
        "TreeSizeNotGrowing",
        (5, 5),
    )
    send(member_ledger.functions.anchor(6, root), accounts.exchange_a)


def test_suspension_and_reinstatement_are_admin_only_and_state_checked(
    member_ledger, accounts, send, reverted
):
    functions = member_ledger.functions
    assert reverted(functions.suspendMember(accounts.exchange_b), accounts.exchange_a) == (
        "NotAdmin",
        (accounts.exchange_a,),
    )
    assert reverted(functions.reinstateMember(accounts.exchange_b), accounts.exchange_a) == (
        "NotAdmin",
        (accounts.exchange_a,),
    )
    assert reverted(functions.suspendMember(accounts.outsider), accounts.admin) == (
        "NotMember",
        (accounts.outsider,),
    )
    assert reverted(functions.reinstateMember(accounts.outsider), accounts.admin) == (
        "NotMember",
        (accounts.outsider,),
    )
    assert reverted(functions.reinstateMember(accounts.exchange_b), accounts.admin) == (
        "MemberNotSuspended",
        (accounts.exchange_b,),
    )
    send(functions.suspendMember(accounts.exchange_b), accounts.admin)
    assert reverted(functions.suspendMember(accounts.exchange_b), accounts.admin) == (
        "MemberNotActive",
        (accounts.exchange_b,),
    )


def test_members_are_listed_in_order_of_admission(member_ledger, accounts):
    assert member_ledger.functions.memberCount().call() == 2
    assert [member_ledger.functions.memberAt(index).call() for index in range(2)] == [
        accounts.exchange_a,
        accounts.exchange_b,
    ]
