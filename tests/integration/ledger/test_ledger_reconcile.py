"""Reconciliation finds every kind of tampering — in SQL, as an attacker with database access
would, and on chain — and reports nothing on a clean ledger."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from ledger.anchoring import run_anchoring
from ledger.chain import Web3ChainGateway, queue_code_registration
from ledger.log import append_record
from ledger.note import NoteSigner
from ledger.reconcile import (
    DiscrepancyKind,
    ExpectedRecord,
    ReconcileOptions,
    recent_alerts,
    reconcile,
    reconcile_and_record,
)
from ledger.sealing import seal
from market.database import current_engine

SIGNER = NoteSigner.generate("exchange.test/ledger")
OPTIONS = ReconcileOptions(verifier=SIGNER.verifier, chunk_leaves=100)


async def append_and_seal(count: int, start: int = 0, *, codes: tuple[str, ...] = ()) -> None:
    async with current_engine().transaction():
        for number in range(start, start + count):
            leaf = await append_record("test.event", actor="system", subject=f"thing:{number}",
                                       payload={"n": number})
        for code in codes:
            await queue_code_registration(code, leaf.leaf_index, leaf.leaf_hash)
    assert await seal(SIGNER) is not None


async def tamper(database_url: str, *statements: str) -> None:
    """Rewrite rows as an attacker with database access: triggers switched off."""
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute("SET session_replication_role = replica")
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


def kinds(report) -> list[tuple[DiscrepancyKind, str]]:
    return [(item.kind, item.where) for item in report.discrepancies]


async def test_a_clean_ledger_reports_nothing(db: str) -> None:
    await append_and_seal(300)
    await append_and_seal(5, 300)
    await append_and_seal(2, 305)  # unsealed leaves are not a difference
    report = await reconcile(OPTIONS)
    assert report.discrepancies == []
    assert (report.tree_size, report.leaves_checked) == (307, 307)


CHANGE_ENTRY = ("UPDATE ledger_leaves SET entry = convert_to(replace(convert_from(entry, 'UTF8'),"
                " '\"n\":7', '\"n\":8'), 'UTF8') WHERE leaf_index = 7")


@pytest.mark.parametrize(("statements", "expected"), [
    ([CHANGE_ENTRY], [(DiscrepancyKind.ENTRY_CHANGED, "leaf 7")]),
    ([CHANGE_ENTRY, ("UPDATE ledger_leaves SET leaf_hash = sha256('\\x00'::bytea || entry) "
                    "WHERE leaf_index = 7")],
     [(DiscrepancyKind.TILE_MISMATCH, "tile 0/0"), (DiscrepancyKind.TILE_MISMATCH, "tile 1/0"),
      (DiscrepancyKind.CHECKPOINT_ROOT_MISMATCH, "checkpoint at size 260"),
      (DiscrepancyKind.CHECKPOINT_ROOT_MISMATCH, "checkpoint at size 300")]),
    (["DELETE FROM ledger_leaves WHERE leaf_index = 299"],
     [(DiscrepancyKind.MISSING_LEAF, "leaf 299"),
      (DiscrepancyKind.CHECKPOINT_BEYOND_LOG, "checkpoint at size 300")]),
    ([("INSERT INTO ledger_leaves (leaf_index, kind, subject, entry, leaf_hash, recorded_at) "
      "SELECT 300, kind, subject, entry, leaf_hash, recorded_at FROM ledger_leaves "
      "WHERE leaf_index = 0")],
     [(DiscrepancyKind.EXTRA_LEAF, "leaf 300")]),
    ([("UPDATE ledger_tiles SET hashes = overlay(hashes PLACING '\\x00'::bytea FROM 33) "
      "WHERE level = 0 AND tile_index = 1")],
     [(DiscrepancyKind.TILE_MISMATCH, "tile 0/1")]),
    ([("UPDATE ledger_checkpoints SET note = replace(note, '\n300\n', '\n301\n') "
      "WHERE tree_size = 300")],
     [(DiscrepancyKind.CHECKPOINT_SIGNATURE, "checkpoint at size 300")]),
    (["UPDATE ledger_checkpoints SET root_hash = sha256('forged') WHERE tree_size = 260"],
     [(DiscrepancyKind.CHECKPOINT_ROOT_MISMATCH, "checkpoint at size 260"),
      (DiscrepancyKind.CHECKPOINT_ROOT_MISMATCH, "checkpoint at size 260")]),
    (["DELETE FROM ledger_tiles WHERE level = 1"],
     [(DiscrepancyKind.TILE_MISSING, "tile 1/0")]),
])
async def test_tampering_in_the_database_is_reported_with_where(
        db: str, statements: list[str], expected: list[tuple[DiscrepancyKind, str]]) -> None:
    await append_and_seal(260)
    await append_and_seal(40, 260)
    await tamper(db, *statements)
    report = await reconcile(OPTIONS)
    assert kinds(report) == expected


class FakeRecords:
    name = "registrations"
    kinds = frozenset({"test.event"})

    def __init__(self, records: list[ExpectedRecord]) -> None:
        self._records = records

    async def expected_records(self) -> AsyncIterator[ExpectedRecord]:
        for record in self._records:
            yield record


async def test_database_records_are_compared_with_their_newest_leaf(db: str) -> None:
    await append_and_seal(3)
    source = FakeRecords([
        ExpectedRecord("thing:0", "test.event", {"n": 0}),
        ExpectedRecord("thing:1", "test.event", {"n": 100}),  # changed after it was logged
        ExpectedRecord("thing:9", "test.event", {"n": 9}),  # never logged
    ])  # thing:2 is logged but gone from the database
    options = ReconcileOptions(verifier=SIGNER.verifier, record_sources=[source])
    report = await reconcile(options)
    assert kinds(report) == [
        (DiscrepancyKind.RECORD_CHANGED, "registrations thing:1"),
        (DiscrepancyKind.RECORD_NOT_LOGGED, "registrations thing:9"),
        (DiscrepancyKind.RECORD_MISSING, "registrations thing:2"),
    ]


async def test_findings_are_recorded_and_raise_an_alert(db: str) -> None:
    await append_and_seal(10)
    clean = await reconcile_and_record(OPTIONS, trigger="test")
    assert clean.report.clean
    assert await recent_alerts(10) == []
    await tamper(db, CHANGE_ENTRY)
    stored = await reconcile_and_record(OPTIONS, trigger="test")
    (alert,) = await recent_alerts(10)
    assert alert.reconciliation_id == stored.id
    assert "entry_changed_after_logging" in alert.summary


@pytest.mark.chain
async def test_chain_differences_are_reported(db, chain, gateway) -> None:
    code = "DEMOEX-A-2026-00000009-K"
    await append_and_seal(4, codes=(code,))
    await run_anchoring(gateway)

    def options(**overrides):
        def factory() -> Web3ChainGateway:
            return Web3ChainGateway(chain.node.rpc_url, chain.exchange_key,
                                    chain.contract.address)
        return ReconcileOptions(verifier=SIGNER.verifier, gateway_factory=factory, **overrides)

    assert (await reconcile(options())).discrepancies == []

    # An unanchored checkpoint is a finding only once it is older than the allowed delay.
    await append_and_seal(2, 4)
    assert (await reconcile(options())).discrepancies == []
    later = datetime.now(UTC) + timedelta(hours=1)
    assert kinds(await reconcile(options(), now=later)) == [
        (DiscrepancyKind.CHECKPOINT_NOT_ANCHORED, "checkpoint at size 6")]

    # The exchange's key anchors a root of its own making (a compromised signer, say).
    chain.w3.eth.wait_for_transaction_receipt(chain.contract.functions.anchor(
        6, hashlib.sha256(b"forged").digest()).transact({"from": chain.exchange}))
    # Our code record is rewritten to claim a code that another member holds on chain.
    chain.w3.eth.wait_for_transaction_receipt(chain.contract.functions.registerCode(
        "PEER-A-2026-00000001-P", 1, hashlib.sha256(b"peer").digest()).transact(
        {"from": chain.peer}))
    await tamper(db, "UPDATE ledger_code_registrations SET code = 'PEER-A-2026-00000001-P'")
    assert kinds(await reconcile(options())) == [
        (DiscrepancyKind.CHAIN_ROOT_MISMATCH, "chain anchor at size 6"),
        (DiscrepancyKind.CODE_REGISTERED_ELSEWHERE, "code PEER-A-2026-00000001-P"),
    ]


async def test_an_unreachable_chain_is_reported_not_fatal(db: str) -> None:
    await append_and_seal(2)

    def factory() -> Web3ChainGateway:
        return Web3ChainGateway("http://127.0.0.1:9", "0x" + "11" * 32, "0x" + "22" * 20,
                                attempts=1)

    report = await reconcile(ReconcileOptions(verifier=SIGNER.verifier, gateway_factory=factory))
    assert kinds(report) == [(DiscrepancyKind.CHAIN_UNREACHABLE, "chain")]
