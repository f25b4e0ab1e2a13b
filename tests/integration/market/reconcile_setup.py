"""Reconciling the exchange's records with their leaves in tests: a run against the real record
sources (or the ones a test names), an attacker's SQL, and the findings by kind and place."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from ledger.note import NoteSigner
from ledger.reconcile import (
    DiscrepancyKind,
    ReconcileOptions,
    ReconcileReport,
    RecordSource,
    reconcile,
)
from ledger.tables import LedgerLeaf
from market.ledger_wiring import record_sources

SIGNER = NoteSigner.generate("exchange.test/ledger")


async def run(sources: Sequence[RecordSource] | None = None) -> ReconcileReport:
    """Reconcile with ``sources``, or with every source the exchange wires."""
    return await reconcile(ReconcileOptions(
        verifier=SIGNER.verifier,
        record_sources=record_sources() if sources is None else sources))


async def tamper(database_url: str, statement: str, *args: object,
                 triggers: bool = True) -> None:
    """Rewrite rows as an attacker with database access; with ``triggers`` off for tables whose
    triggers refuse the change (append-only or revoke-once rows)."""
    connection = await asyncpg.connect(database_url)
    try:
        if not triggers:
            await connection.execute("SET session_replication_role = replica")
        await connection.execute(statement, *args)
    finally:
        await connection.close()


def findings(report: ReconcileReport) -> list[tuple[DiscrepancyKind, str]]:
    return [(item.kind, item.where) for item in report.discrepancies]


async def unchecked_kinds() -> set[str]:
    """Kinds of the leaves logged so far that no record source of the exchange owns: their
    leaves would be compared with nothing in the database."""
    owned = frozenset().union(*(source.kinds for source in record_sources()))
    return {row["kind"] for row in await LedgerLeaf.select(LedgerLeaf.kind).run()} - owned
