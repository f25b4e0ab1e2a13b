"""The witness's state in the database: each witnessed log's latest verified checkpoint, and
alerts with the evidence of logs that could not prove consistency.

tlog-witness requires checking the old size and recording the new checkpoint atomically (else
two racing submissions can roll a log's state back); one transaction holding a per-origin
advisory lock does both, and stores the evidence of an inconsistency in the same commit.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ledger.cosignature import Cosignature, Cosigner
from ledger.note import NoteVerifier
from ledger.tables import LedgerLeaf
from ledger.witness import (
    Accepted,
    AddCheckpointRequest,
    Decision,
    Inconsistent,
    WitnessedCheckpoint,
    decide,
    evidence,
)

logger = logging.getLogger("ledger.witness")

SUBMISSION = "submission"
POLL = "poll"


@dataclass(frozen=True)
class Witnessed:
    """What the witness decided, its cosignature when it cosigned, and the alert it raised."""

    decision: Decision
    cosignature: Cosignature | None = None
    alert_id: int | None = None


@dataclass(frozen=True)
class WitnessAlert:
    id: int
    raised_at: datetime
    origin: str
    source: str
    summary: str
    evidence: dict[str, Any]


@asynccontextmanager
async def _transaction() -> AsyncIterator[Any]:
    async with LedgerLeaf._meta.db.transaction() as transaction:
        yield transaction.connection


async def _known(connection: Any, origin: str) -> WitnessedCheckpoint | None:
    row = await connection.fetchrow(
        "SELECT tree_size, root_hash, note FROM ledger_witnessed_logs WHERE origin = $1", origin)
    if row is None:
        return None
    return WitnessedCheckpoint(int(row["tree_size"]), bytes(row["root_hash"]), row["note"])


async def known_checkpoint(origin: str) -> WitnessedCheckpoint | None:
    async with _transaction() as connection:
        return await _known(connection, origin)


async def witness_checkpoint(request: AddCheckpointRequest, verifier: NoteVerifier | None, *,
                             source: str, cosigner: Cosigner | None,
                             timestamp: int) -> Witnessed:
    """Judge `request` against the stored state of its log and apply the outcome: record a
    consistent checkpoint (and cosign it with `cosigner`), or keep the evidence of an
    inconsistent one. Raises `WitnessRequestError` for a malformed checkpoint."""
    origin = request.claimed_checkpoint().origin
    async with _transaction() as connection:
        await connection.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                                 f"ledger:witness:{origin}")
        decision = decide(request, verifier, await _known(connection, origin))
        if isinstance(decision, Accepted):
            await _record(connection, origin, decision)
            cosignature = None if cosigner is None else cosigner.cosign(
                decision.checkpoint_text, timestamp)
            return Witnessed(decision, cosignature)
        if isinstance(decision, Inconsistent):
            alert_id = await _raise_alert(connection, origin, source, decision.reason,
                                          evidence(decision))
            return Witnessed(decision, alert_id=alert_id)
    return Witnessed(decision)


async def _record(connection: Any, origin: str, accepted: Accepted) -> None:
    checkpoint = accepted.checkpoint
    await connection.execute(
        "INSERT INTO ledger_witnessed_logs (origin, tree_size, root_hash, note) "
        "VALUES ($1, $2, $3, $4) ON CONFLICT (origin) DO UPDATE SET tree_size = $2, "
        "root_hash = $3, note = $4, verified_at = now() "
        "WHERE ledger_witnessed_logs.tree_size < $2",
        origin, checkpoint.tree_size, checkpoint.root_hash,
        accepted.signed_note)


async def _raise_alert(connection: Any, origin: str, source: str, summary: str,
                       detail: dict[str, object]) -> int:
    alert_id = int(await connection.fetchval(
        "INSERT INTO ledger_witness_alerts (origin, source, summary, evidence) "
        "VALUES ($1, $2, $3, $4::jsonb) RETURNING id",
        origin, source, summary, json.dumps(detail)))
    logger.error("witness alert %d: log %s: %s", alert_id, origin, summary)
    return alert_id


async def raise_alert(origin: str, *, source: str, summary: str,
                      detail: dict[str, object]) -> int:
    """Store an alert with its evidence in a transaction of its own."""
    async with _transaction() as connection:
        return await _raise_alert(connection, origin, source, summary, detail)


async def recent_witness_alerts(limit: int) -> list[WitnessAlert]:
    async with _transaction() as connection:
        rows = await connection.fetch(
            "SELECT id, raised_at, origin, source, summary, evidence FROM ledger_witness_alerts "
            "ORDER BY id DESC LIMIT $1", limit)
    return [WitnessAlert(int(row["id"]), row["raised_at"], row["origin"], row["source"],
                         row["summary"], json.loads(row["evidence"])) for row in rows]
