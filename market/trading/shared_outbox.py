"""The outbox of signed messages to peer exchanges (work after commit, CONVENTIONS §7).

A use case writes what it has to tell a peer in its own transaction: a new version of a
public-pool demand (``queue_demand_version``), or a message to one peer (``queue_message``). The
delivery job (``deliver_due``) then, after the commit:

1. queues each active peer the latest version of every shared demand it was not yet sent (so
   a peer admitted later gets the open demands), superseding older versions still pending;
2. claims due deliveries with a lease, signs each (EIP-712, this exchange's chain key) and
   POSTs it to the peer; no transaction or row lock is held during the call;
3. records the outcome: delivered on 2xx; refused, for good, when the peer answered with a
   4xx problem (its reason is kept for staff); otherwise retried with exponential backoff, and
   failed after ``MAX_ATTEMPTS``.

A message is signed with its delivery's creation time as ``issuedAt``, so a retry sends exactly
the same bytes and the receiver recognises it as a re-delivery, not a conflicting message.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from uuid import UUID

import httpx
import msgspec
from piccolo.engine.postgres import PostgresTransaction

from market.trading import shared_store
from market.trading.notifications import retry_delay_s
from market.trading.shared_identity import ExchangeIdentity, PeerDirectory
from market.trading.shared_messages import (
    PeerMessage,
    SharedDemand,
    UnitBudget,
    decode,
    envelope,
    sign,
)
from market.trading.store import DemandRecord, Visibility
from market.trading.tables import DemandRow

logger = logging.getLogger("market.trading.shared_outbox")

PATHS = {"SharedDemand": "/peer/demands", "SharedOffer": "/peer/offers",
         "OfferDecision": "/peer/offer-decisions"}
MAX_ATTEMPTS = 10
LEASE = timedelta(seconds=60)
TIMEOUT_S = 10.0
# Demand budgets are in the exchange's trading currency (offers are checked against it).
DEMAND_CURRENCY = "CNY"
_RETRIED_STATUSES = frozenset({408, 425, 429})
MAX_ERROR_LENGTH = 500


def shared_demand(record: DemandRecord) -> SharedDemand:
    """The demand as peers see it: what they need to match and answer it, and nothing of the
    buyer. Version, origin, recipient and issue time are filled in for each delivery."""
    demand = record.demand
    return SharedDemand(
        origin="", recipient="", demand_id=str(record.id), version=0, state=record.state.value,
        close_reason="" if record.close_reason is None else record.close_reason.value,
        title=demand.title, description=demand.description,
        domains=sorted(domain.value for domain in demand.domains),
        purpose=demand.purpose.value,
        has_budget_per_unit=demand.budget_minor_per_unit is not None,
        budget_minor_per_unit=demand.budget_minor_per_unit or 0,
        unit_budgets=[UnitBudget(unit=unit.value, amount_minor=amount)
                      for unit, amount in sorted(demand.unit_budgets_minor.items())],
        currency=DEMAND_CURRENCY,
        delivery_forms=sorted(form.value for form in demand.delivery_forms),
        grade_clearance=demand.grade_clearance.value, deadline=demand.deadline.isoformat(),
        issued_at=0)


async def queue_demand_version(record: DemandRecord, now: datetime) -> int | None:
    """Record the demand's current state as its next shared version, in the caller's
    transaction; an exchange-only demand is never shared (returns None)."""
    if record.visibility is not Visibility.PUBLIC_POOL:
        return None
    return await shared_store.insert_demand_version(
        record.id, record.state, msgspec.to_builtins(shared_demand(record)), now)


async def queue_message(message: PeerMessage, subject: UUID, now: datetime, *,
                        version: int = 1) -> None:
    """Queue a message to the peer it names as recipient, in the caller's transaction."""
    await shared_store.queue_delivery(message.TYPE_NAME, subject, version, message.recipient,
                                      msgspec.to_builtins(message), now)


@dataclass(frozen=True)
class DeliveryReport:
    queued: int
    delivered: int
    retrying: int
    refused: int
    failed: int


def _transaction() -> PostgresTransaction:
    transaction: PostgresTransaction = DemandRow._meta.db.transaction()
    return transaction


def _problem_detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    return str(body.get("detail", ""))[:MAX_ERROR_LENGTH] if isinstance(body, dict) else ""


async def _send(http: httpx.AsyncClient, identity: ExchangeIdentity, directory: PeerDirectory,
                delivery: shared_store.Delivery) -> tuple[str, str]:
    """POST one delivery; the outcome (delivered, retry, refused, failed) and why."""
    peer = await directory.peer_by_origin(delivery.peer_origin)
    if peer is None or peer.state != "active":
        return "failed", "the peer is not an active member of the consortium"
    stored = decode(delivery.kind, delivery.message)
    if isinstance(stored, SharedDemand):
        stored = msgspec.structs.replace(stored, version=delivery.version)
    message = msgspec.structs.replace(stored, origin=identity.origin, recipient=peer.origin,
                                      issued_at=int(delivery.created_at.timestamp()))
    body = envelope(message, sign(message, identity.domain, identity.private_key))
    url = peer.api_base_url.rstrip("/") + PATHS[delivery.kind]
    try:
        response = await http.post(url, json=body)
    except httpx.HTTPError as error:
        return "retry", f"transport error: {type(error).__name__}"
    status = response.status_code
    if 200 <= status < 300:
        return "delivered", ""
    if status >= 500 or status in _RETRIED_STATUSES:
        return "retry", f"HTTP {status}"
    return "refused", f"HTTP {status}: {_problem_detail(response)}"


async def _record(delivery: shared_store.Delivery, outcome: str, error: str, now: datetime
                  ) -> str | None:
    """Record the outcome; None when another worker has claimed the delivery since."""
    attempts = delivery.attempts + 1
    if outcome == "retry" and attempts >= MAX_ATTEMPTS:
        outcome = "failed"
    retry_at = now + timedelta(seconds=retry_delay_s(attempts)) if outcome == "retry" else None
    state = "pending" if outcome == "retry" else outcome
    recorded = await shared_store.record_delivery(
        delivery, state, error=error, next_attempt_at=retry_at, lease_until=now + LEASE, now=now)
    if not recorded:
        return None
    return "retrying" if outcome == "retry" else outcome


async def deliver_due(identity: ExchangeIdentity, directory: PeerDirectory, *, today: date,
                      now: datetime | None = None, batch: int = 50,
                      client: httpx.AsyncClient | None = None) -> DeliveryReport:
    """Queue new demand versions for every active peer, then send what is due."""
    moment = now or datetime.now(UTC)
    queued = 0
    peers = await directory.active_peers()
    async with _transaction():
        for peer in peers:
            queued += await shared_store.fan_out_demand_versions(peer.origin, today, moment)
        claimed = await shared_store.claim_due_deliveries(moment, moment + LEASE, batch)
    outcomes = {"delivered": 0, "retrying": 0, "refused": 0, "failed": 0}
    if not claimed:
        return DeliveryReport(queued, 0, 0, 0, 0)
    # Redirects are not followed: a peer must not bounce a signed message elsewhere.
    http = client or httpx.AsyncClient(timeout=TIMEOUT_S, follow_redirects=False)
    try:
        for delivery in claimed:
            outcome, error = await _send(http, identity, directory, delivery)
            if error:
                logger.info("delivery %s of %s to %s: %s", delivery.id, delivery.kind,
                            delivery.peer_origin, error)
            recorded = await _record(delivery, outcome, error, moment)
            if recorded is not None:
                outcomes[recorded] += 1
    finally:
        if client is None:
            await http.aclose()
    return DeliveryReport(queued, outcomes["delivered"], outcomes["retrying"],
                          outcomes["refused"], outcomes["failed"])
