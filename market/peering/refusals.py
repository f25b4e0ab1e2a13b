"""Every claim of a peer that this exchange refused, with the reason and the evidence, for staff
(issue 7 §9): forged profiles, proofs against unknown checkpoints, codes from non-members,
replayed messages. Each refusal is also logged."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from market.peering.tables import RefusalRow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Refusal:
    id: int
    kind: str
    peer_origin: str | None
    reason: str
    evidence: dict[str, Any]
    refused_at: datetime


# Refusals come from public routes, where anyone can send claims: past this many of one kind
# from one claimed sender in a minute, further ones are only logged, so a flood cannot fill
# the append-only table while staff still see that it happened and what it looked like.
KEPT_PER_MINUTE = 60


async def record_refusal(kind: str, reason: str, *, peer_origin: str | None,
                         evidence: dict[str, object]) -> None:
    """Keep a refusal for staff. Call it outside any transaction that is about to roll back
    (the refused request's own work is undone; the refusal must stay)."""
    log.warning("refused a peer's %s from %s: %s", kind, peer_origin or "an unknown sender",
                reason)
    now = datetime.now(UTC)
    await RefusalRow.raw(
        "INSERT INTO peering_refusals (kind, peer_origin, reason, evidence, refused_at) "
        "SELECT {}, {}, {}, {}::jsonb, {} WHERE (SELECT count(*) FROM peering_refusals "
        "WHERE kind = {} AND peer_origin IS NOT DISTINCT FROM {} "
        "AND refused_at > {}::timestamptz - interval '1 minute') < {}",
        kind, peer_origin, reason, json.dumps(evidence, ensure_ascii=False, default=str), now,
        kind, peer_origin, now, KEPT_PER_MINUTE).run()


async def recent_refusals(*, limit: int, before_id: int | None = None) -> list[Refusal]:
    rows = await RefusalRow.raw(
        "SELECT id, kind, peer_origin, reason, evidence::text AS evidence, refused_at "
        "FROM peering_refusals WHERE {}::bigint IS NULL OR id < {} "
        "ORDER BY id DESC LIMIT {}", before_id, before_id, limit).run()
    return [Refusal(id=row["id"], kind=row["kind"], peer_origin=row["peer_origin"],
                    reason=row["reason"], evidence=json.loads(row["evidence"]),
                    refused_at=row["refused_at"]) for row in rows]
