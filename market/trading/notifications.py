"""Notifications to organisations: an outbox read through the API, and optional signed webhooks.

A notification is written in the same transaction as the change it reports (the outbox form of
"work after commit", CONVENTIONS §7), so a rolled-back change never notifies anyone. If the
organisation has a webhook when the notification is written, a job delivers it by HTTP POST:

* the body is the JSON of the notification, sent exactly as signed;
* ``X-Exchange-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>``: the
  timestamp is inside the signed bytes, so a receiver can refuse replays of old deliveries
  (the same scheme as Stripe's webhooks; ``verify_signature`` is the receiver's side);
* a delivery that fails is retried with exponential backoff, and given up after
  ``MAX_ATTEMPTS``; only http and https URLs are ever called, and only on public internet
  addresses unless ``allow_private`` (``MARKET_WEBHOOK_ALLOW_PRIVATE``) says otherwise
  (``market.trading.webhook_targets``): a delivery refused for its address fails at once.

Deliveries are claimed with a lease before any HTTP call, so that no database transaction or
row lock is held while a receiver is slow, and two workers never deliver the same notification
at the same time. A receiver may still see a notification twice (a worker that dies after the
POST and before recording it): the ``X-Exchange-Event-Id`` header lets it de-duplicate.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID, uuid4

import httpx

from market.errors import InvalidInputError, NotFoundError
from market.trading.tables import NotificationRow
from market.trading.webhook_targets import (
    PinnedRequest,
    PrivateTargetError,
    Resolver,
    pinned_request,
    public_address,
    system_resolver,
)

logger = logging.getLogger("market.trading.notifications")

SIGNATURE_HEADER = "X-Exchange-Signature"
EVENT_ID_HEADER = "X-Exchange-Event-Id"
EVENT_KIND_HEADER = "X-Exchange-Event-Kind"
MAX_URL_LENGTH = 2000
MAX_ATTEMPTS = 8
FIRST_RETRY_S = 10.0
MAX_RETRY_S = 3600.0
# A claimed delivery is left alone by other workers for this long; longer than the HTTP timeout.
LEASE = timedelta(seconds=60)
TIMEOUT_S = 10.0
SIGNATURE_TOLERANCE_S = 300
_ALLOWED_SCHEMES = frozenset({"http", "https"})

Row = dict[str, Any]


async def _rows(sql: str, *args: object) -> list[Row]:
    result = await NotificationRow.raw(sql, *args).run()
    return [dict(row) for row in result]


def _now() -> datetime:
    return datetime.now(UTC)


# --- signatures ------------------------------------------------------------------------------


def signature(secret: str, body: bytes, timestamp: int) -> str:
    """The signature header's value for ``body`` sent at ``timestamp`` (unix seconds)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def verify_signature(
    secret: str, body: bytes, header: str, *, now: int, tolerance_s: int = SIGNATURE_TOLERANCE_S
) -> bool:
    """The receiver's check: a well-formed header, a fresh timestamp and a matching HMAC."""
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(parts["t"])
        claimed = parts["v1"]
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance_s:
        return False
    expected = signature(secret, body, timestamp).split("v1=", 1)[1]
    return hmac.compare_digest(expected, claimed)


def check_webhook_url(url: str) -> str:
    """``url`` if it is an absolute http(s) URL without credentials in it."""
    text = url.strip()
    if not text or len(text) > MAX_URL_LENGTH:
        raise InvalidInputError(f"must be 1 to {MAX_URL_LENGTH} characters", field="url")
    parts = urlsplit(text)
    if parts.scheme.lower() not in _ALLOWED_SCHEMES:
        raise InvalidInputError("only http and https URLs are called", field="url")
    if not parts.hostname:
        raise InvalidInputError("the URL names no host", field="url")
    # Credentials in a URL end up in logs and error messages; the signature authenticates us.
    if parts.username is not None or parts.password is not None:
        raise InvalidInputError("the URL must not carry credentials", field="url")
    return text


# --- the outbox ------------------------------------------------------------------------------


@dataclass(frozen=True)
class NotificationRecord:
    id: UUID
    organisation_id: UUID
    kind: str
    subject: str
    payload: dict[str, Any]
    created_at: datetime
    read_at: datetime | None
    delivery: str
    attempts: int
    delivered_at: datetime | None


def _payload(raw: object) -> dict[str, Any]:
    value = json.loads(raw) if isinstance(raw, str | bytes) else raw
    if not isinstance(value, dict):
        raise TypeError("a stored notification payload must be a JSON object")
    return value


def _record(row: Mapping[str, Any]) -> NotificationRecord:
    return NotificationRecord(
        id=row["id"],
        organisation_id=row["organisation_id"],
        kind=row["kind"],
        subject=row["subject"],
        payload=_payload(row["payload"]),
        created_at=row["created_at"],
        read_at=row["read_at"],
        delivery=row["delivery"],
        attempts=row["attempts"],
        delivered_at=row["delivered_at"],
    )


_COLUMNS = (
    "id, organisation_id, kind, subject, payload::text AS payload, created_at, read_at, "
    "delivery, attempts, delivered_at"
)


async def notify(
    organisation_id: UUID,
    kind: str,
    subject: str,
    payload: Mapping[str, object],
    *,
    now: datetime | None = None,
) -> UUID:
    """Add a notification to the outbox, in the caller's transaction; it is queued for the
    organisation's webhook if it has one."""
    notification_id = uuid4()
    await _rows(
        "INSERT INTO trading_notifications (id, organisation_id, kind, subject, payload, "
        "created_at, delivery, next_attempt_at) "
        "SELECT {}, {}, {}, {}, {}::jsonb, {}, "
        "CASE WHEN w.organisation_id IS NULL THEN 'none' ELSE 'pending' END, "
        "CASE WHEN w.organisation_id IS NULL THEN NULL ELSE {}::timestamptz END "
        "FROM (SELECT 1) AS one "
        "LEFT JOIN trading_webhooks w ON w.organisation_id = {}",
        notification_id,
        organisation_id,
        kind,
        subject,
        json.dumps(dict(payload), ensure_ascii=False),
        now or _now(),
        now or _now(),
        organisation_id,
    )
    return notification_id


async def list_for(
    organisation_id: UUID, *, unread_only: bool = False, limit: int = 100
) -> list[NotificationRecord]:
    """The organisation's notifications, newest first."""
    rows = await _rows(
        f"SELECT {_COLUMNS} FROM trading_notifications WHERE organisation_id = {{}} "  # noqa: S608 -- constant columns
        "AND (NOT {} OR read_at IS NULL) ORDER BY sequence DESC LIMIT {}",
        organisation_id,
        unread_only,
        limit,
    )
    return [_record(row) for row in rows]


async def mark_read(organisation_id: UUID, notification_id: UUID) -> NotificationRecord:
    """Mark one of the organisation's notifications read (another's answers as unknown)."""
    rows = await _rows(
        "UPDATE trading_notifications SET read_at = COALESCE(read_at, {}) "  # noqa: S608 -- constant columns
        f"WHERE id = {{}} AND organisation_id = {{}} RETURNING {_COLUMNS}",
        _now(),
        notification_id,
        organisation_id,
    )
    if not rows:
        raise NotFoundError("no such notification", field="notification_id")
    return _record(rows[0])


# --- webhooks --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Webhook:
    organisation_id: UUID
    url: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class NewWebhook:
    """The only time the secret is shown: receivers need it to check signatures."""

    webhook: Webhook
    secret: str


def _webhook(row: Mapping[str, Any]) -> Webhook:
    return Webhook(
        organisation_id=row["organisation_id"],
        url=row["url"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


async def set_webhook(organisation_id: UUID, url: str) -> NewWebhook:
    """Register or replace the organisation's webhook, with a fresh signing secret."""
    checked = check_webhook_url(url)
    secret = "whsec_" + secrets.token_urlsafe(32)
    now = _now()
    rows = await _rows(
        "INSERT INTO trading_webhooks (organisation_id, url, secret, created_at, updated_at) "
        "VALUES ({}, {}, {}, {}, {}) ON CONFLICT (organisation_id) DO UPDATE SET "
        "url = EXCLUDED.url, secret = EXCLUDED.secret, updated_at = EXCLUDED.updated_at "
        "RETURNING organisation_id, url, created_at, updated_at",
        organisation_id,
        checked,
        secret,
        now,
        now,
    )
    return NewWebhook(webhook=_webhook(rows[0]), secret=secret)


async def get_webhook(organisation_id: UUID) -> Webhook:
    rows = await _rows(
        "SELECT organisation_id, url, created_at, updated_at FROM trading_webhooks "
        "WHERE organisation_id = {}",
        organisation_id,
    )
    if not rows:
        raise NotFoundError("the organisation has no webhook", field="webhook")
    return _webhook(rows[0])


async def delete_webhook(organisation_id: UUID) -> None:
    engine = NotificationRow._meta.db
    async with engine.transaction():
        removed = await _rows(
            "DELETE FROM trading_webhooks WHERE organisation_id = {} RETURNING organisation_id",
            organisation_id,
        )
        if not removed:
            raise NotFoundError("the organisation has no webhook", field="webhook")
        # Nowhere to deliver any more; the notifications stay readable through the API.
        await _rows(
            "UPDATE trading_notifications SET delivery = 'none', next_attempt_at = NULL "
            "WHERE organisation_id = {} AND delivery = 'pending'",
            organisation_id,
        )


# --- delivery --------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryReport:
    delivered: int
    retrying: int
    failed: int


def retry_delay_s(attempts: int) -> float:
    """Exponential backoff after ``attempts`` failed attempts: 10 s, 20 s, 40 s … up to 1 h."""
    return float(min(FIRST_RETRY_S * 2 ** max(attempts - 1, 0), MAX_RETRY_S))


def delivery_body(row: Mapping[str, Any]) -> bytes:
    document = {
        "id": str(row["id"]),
        "organisation_id": str(row["organisation_id"]),
        "kind": row["kind"],
        "subject": row["subject"],
        "created_at": row["created_at"].isoformat(),
        "payload": _payload(row["payload"]),
    }
    return json.dumps(document, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


async def _claim(now: datetime, batch: int) -> list[Row]:
    engine = NotificationRow._meta.db
    async with engine.transaction():
        return await _rows(
            "UPDATE trading_notifications n SET next_attempt_at = {} FROM ("
            "SELECT n2.id FROM trading_notifications n2 WHERE n2.delivery = 'pending' "
            "AND n2.next_attempt_at <= {} ORDER BY n2.next_attempt_at, n2.sequence LIMIT {} "
            "FOR UPDATE SKIP LOCKED) AS due, trading_webhooks w "
            "WHERE n.id = due.id AND w.organisation_id = n.organisation_id "
            "RETURNING n.id, n.organisation_id, n.kind, n.subject, n.payload::text AS payload, "
            "n.created_at, n.attempts, w.url, w.secret",
            now + LEASE,
            now,
            batch,
        )


async def _record_outcome(row: Row, error: str | None, now: datetime) -> str:
    if error is None:
        await _rows(
            "UPDATE trading_notifications SET delivery = 'delivered', delivered_at = {}, "
            "attempts = attempts + 1, next_attempt_at = NULL, last_error = '' WHERE id = {}",
            now,
            row["id"],
        )
        return "delivered"
    attempts = int(row["attempts"]) + 1
    if attempts >= MAX_ATTEMPTS or error.startswith("refused"):
        await _rows(
            "UPDATE trading_notifications SET delivery = 'failed', attempts = {}, "
            "next_attempt_at = NULL, last_error = {} WHERE id = {}",
            attempts,
            error,
            row["id"],
        )
        return "failed"
    await _rows(
        "UPDATE trading_notifications SET attempts = {}, next_attempt_at = {}, last_error = {} "
        "WHERE id = {}",
        attempts,
        now + timedelta(seconds=retry_delay_s(attempts)),
        error,
        row["id"],
    )
    return "retrying"


async def _target(url: str, *, allow_private: bool, resolve: Resolver) -> PinnedRequest:
    """Where to send a delivery for ``url``: as it is when private addresses are allowed, else
    pinned to a checked public address of its host."""
    if allow_private:
        return PinnedRequest(url=httpx.URL(url), headers={}, extensions={})
    parsed = httpx.URL(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    address = await public_address(parsed.host, port, resolve)
    return pinned_request(url, address)


async def _post(
    client: httpx.AsyncClient, row: Row, now: datetime, *, allow_private: bool, resolve: Resolver
) -> str | None:
    """POST one notification; ``None`` on a 2xx answer, else why it failed (never the
    receiver's response body, nor the URL, which may carry tokens of the receiver's own)."""
    try:
        url = check_webhook_url(str(row["url"]))
    except InvalidInputError:
        return "refused: not an http(s) URL"
    try:
        target = await _target(url, allow_private=allow_private, resolve=resolve)
    except PrivateTargetError as refusal:
        return f"refused: {refusal}"
    body = delivery_body(row)
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: signature(str(row["secret"]), body, int(now.timestamp())),
        EVENT_ID_HEADER: str(row["id"]),
        EVENT_KIND_HEADER: str(row["kind"]),
        **target.headers,
    }
    try:
        response = await client.post(
            target.url, content=body, headers=headers, extensions=target.extensions
        )
    except httpx.HTTPError as error:
        return f"transport error: {type(error).__name__}"
    if 200 <= response.status_code < 300:
        return None
    return f"HTTP {response.status_code}"


async def deliver_due(
    *,
    now: datetime | None = None,
    batch: int = 50,
    client: httpx.AsyncClient | None = None,
    allow_private: bool = False,
    resolve: Resolver = system_resolver,
) -> DeliveryReport:
    """Deliver the notifications due at ``now`` to their organisations' webhooks; receivers on
    private or loopback addresses only if ``allow_private``."""
    moment = now or _now()
    claimed = await _claim(moment, batch)
    outcomes = {"delivered": 0, "retrying": 0, "failed": 0}
    if not claimed:
        return DeliveryReport(0, 0, 0)
    own_client = client is None
    # Redirects are not followed: a receiver must not bounce a signed delivery elsewhere.
    http = client or httpx.AsyncClient(timeout=TIMEOUT_S, follow_redirects=False)
    try:
        for row in claimed:
            error = await _post(http, row, moment, allow_private=allow_private, resolve=resolve)
            if error is not None:
                logger.info("webhook delivery %s failed: %s", row["id"], error)
            outcomes[await _record_outcome(row, error, moment)] += 1
    finally:
        if own_client:
            await http.aclose()
    return DeliveryReport(outcomes["delivered"], outcomes["retrying"], outcomes["failed"])
