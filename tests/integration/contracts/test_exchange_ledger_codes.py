"""The registration-code registry on ExchangeLedger: one code, one owner, across all exchanges."""

from __future__ import annotations

import hashlib

import pytest
from web3 import Web3
from web3.logs import DISCARD

pytestmark = pytest.mark.chain

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
ZERO_HASH = bytes(32)


def leaf_hash_for(code: str) -> bytes:
    """RFC 6962 §2.1 leaf hash of a stand-in entry: SHA-256(0x00 ‖ entry)."""
    return hashlib.sha256(b"\x00" + code.encode()).digest()


def test_a_registered_code_is_looked_up_with_its_owner_and_leaf(member_ledger, accounts, send):
    code = "GZ-DR-2025-000001"
    receipt = send(
        member_ledger.functions.registerCode(code, 17, leaf_hash_for(code)), accounts.exchange_a
    )

    assert member_ledger.functions.lookupCode(code).call() == [
        accounts.exchange_a,
        17,
        leaf_hash_for(code),
        True,
    ]
    (event,) = member_ledger.events.CodeRegistered().process_receipt(receipt, errors=DISCARD)
    assert dict(event["args"]) == {
        "codeHash": Web3.keccak(text=code),
        "code": code,
        "exchange": accounts.exchange_a,
        "leafIndex": 17,
        "leafHash": leaf_hash_for(code),
    }


def test_an_unknown_code_is_reported_unregistered(member_ledger, accounts, send):
    send(
        member_ledger.functions.registerCode("GZ-1", 0, leaf_hash_for("GZ-1")), accounts.exchange_a
    )

    for unknown in ("GZ-2", "gz-1", "GZ-1 ", ""):
        assert member_ledger.functions.lookupCode(unknown).call() == [
            ZERO_ADDRESS,
            0,
            ZERO_HASH,
            False,
        ]


def test_a_code_cannot_be_registered_by_another_exchange(member_ledger, accounts, send, reverted):
    code = "黔数登-2025-000042"
    send(member_ledger.functions.registerCode(code, 3, leaf_hash_for(code)), accounts.exchange_a)

    error = reverted(
        member_ledger.functions.registerCode(code, 9, leaf_hash_for("other record")),
        accounts.exchange_b,
    )

    assert error == ("CodeAlreadyRegistered", (code, accounts.exchange_a))
    assert member_ledger.functions.lookupCode(code).call()[:3] == [
        accounts.exchange_a,
        3,
        leaf_hash_for(code),
    ]


def test_a_code_cannot_be_registered_twice_by_its_owner(member_ledger, accounts, send, reverted):
    code = "GZ-DR-2025-000007"
    send(member_ledger.functions.registerCode(code, 3, leaf_hash_for(code)), accounts.exchange_a)

    error = reverted(
        member_ledger.functions.registerCode(code, 4, leaf_hash_for(code)), accounts.exchange_a
    )

    assert error == ("CodeAlreadyRegistered", (code, accounts.exchange_a))


def test_a_non_member_cannot_register_codes(member_ledger, accounts, reverted):
    functions = member_ledger.functions
    single = reverted(functions.registerCode("X-1", 0, leaf_hash_for("X-1")), accounts.outsider)
    batch = reverted(
        functions.registerCodes(["X-1"], [0], [leaf_hash_for("X-1")]), accounts.outsider
    )

    assert single == batch == ("NotMember", (accounts.outsider,))


@pytest.mark.parametrize(
    ("registration", "expected"),
    [
        (("", leaf_hash_for("")), ("EmptyCode", ())),
        (("C" * 129, leaf_hash_for("C")), ("CodeTooLong", (129, 128))),
        # The limit is on UTF-8 bytes: 43 three-byte characters are 129 bytes.
        (("码" * 43, leaf_hash_for("码")), ("CodeTooLong", (129, 128))),
        (("GZ-1", ZERO_HASH), ("ZeroLeafHash", ("GZ-1",))),
    ],
    ids=["empty", "too-long", "too-long-in-utf8-bytes", "zero-leaf-hash"],
)
def test_malformed_registrations_are_rejected(
    member_ledger, accounts, reverted, registration, expected
):
    code, leaf_hash = registration
    assert (
        reverted(member_ledger.functions.registerCode(code, 0, leaf_hash), accounts.exchange_a)
        == expected
    )


def test_a_code_of_the_maximum_length_is_accepted(member_ledger, accounts, send):
    code = "C" * 128
    send(member_ledger.functions.registerCode(code, 0, leaf_hash_for(code)), accounts.exchange_a)

    assert member_ledger.functions.lookupCode(code).call()[3] is True


def test_a_batch_registers_every_code_in_order(member_ledger, accounts, send):
    codes = [f"SZ-DP-2025-{number:06d}" for number in range(1, 6)]
    leaf_indexes = [100 + offset for offset in range(len(codes))]
    leaf_hashes = [leaf_hash_for(code) for code in codes]

    receipt = send(
        member_ledger.functions.registerCodes(codes, leaf_indexes, leaf_hashes),
        accounts.exchange_b,
    )

    events = member_ledger.events.CodeRegistered().process_receipt(receipt, errors=DISCARD)
    assert [event["args"]["code"] for event in events] == codes
    assert [event["args"]["leafIndex"] for event in events] == leaf_indexes
    assert {event["args"]["exchange"] for event in events} == {accounts.exchange_b}
    for code, leaf_index, leaf_hash in zip(codes, leaf_indexes, leaf_hashes, strict=True):
        assert member_ledger.functions.lookupCode(code).call() == [
            accounts.exchange_b,
            leaf_index,
            leaf_hash,
            True,
        ]


def test_a_batch_with_a_taken_code_registers_nothing(member_ledger, accounts, send, reverted):
    send(
        member_ledger.functions.registerCode("GZ-2", 2, leaf_hash_for("GZ-2")), accounts.exchange_a
    )
    codes = ["SZ-1", "GZ-2", "SZ-3"]

    error = reverted(
        member_ledger.functions.registerCodes(
            codes, [1, 2, 3], [leaf_hash_for(code) for code in codes]
        ),
        accounts.exchange_b,
    )

    assert error == ("CodeAlreadyRegistered", ("GZ-2", accounts.exchange_a))
    # A batch is all or nothing: SZ-1 came before the taken code and was not kept either.
    assert member_ledger.functions.lookupCode("SZ-1").call()[3] is False
    assert member_ledger.functions.lookupCode("SZ-3").call()[3] is False


def test_a_batch_repeating_a_code_is_rejected(member_ledger, accounts, reverted):
    codes = ["SZ-1", "SZ-2", "SZ-1"]

    error = reverted(
        member_ledger.functions.registerCodes(
            codes, [1, 2, 3], [leaf_hash_for(code) for code in codes]
        ),
        accounts.exchange_b,
    )

    assert error == ("CodeAlreadyRegistered", ("SZ-1", accounts.exchange_b))
    assert member_ledger.functions.lookupCode("SZ-2").call()[3] is False


def test_a_batch_needs_matching_non_empty_columns(member_ledger, accounts, reverted):
    functions = member_ledger.functions
    hashes = [leaf_hash_for("A"), leaf_hash_for("B")]

    assert reverted(functions.registerCodes(["A", "B"], [1], hashes), accounts.exchange_a) == (
        "BatchLengthMismatch",
        (2, 1, 2),
    )
    assert reverted(
        functions.registerCodes(["A", "B"], [1, 2], hashes[:1]), accounts.exchange_a
    ) == ("BatchLengthMismatch", (2, 2, 1))
    assert reverted(functions.registerCodes([], [], []), accounts.exchange_a) == (
        "EmptyBatch",
        (),
    )
