"""Delivery of a paid order (ARCHITECTURE "How a trade flows" 3): one access grant per order.

- file, table and report products: a download token bound to the buying organisation;
- API products: an API key with a call quota (the ordered quantity when priced per call);
- sandbox products: a sandbox seat (the ordered quantity of seats when priced per product).

Raw data never leaves the domain (原始数据不出域), so the grant is the only thing delivered.
A grant's secret is generated when the buyer asks for it, shown that once and stored as a SHA-256
hash; asking again replaces it, so a lost or leaked secret is rotated rather than recovered.
Grants expire at the end of the order's term and are revoked on refund and when the operator's
authorization ends (``revoke_for_products``).
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from listings.domains import ChargingUnit, DeliveryForm
from market.errors import ConflictError, NotFoundError, PermissionDeniedError
from market.trading.order_tables import connection

SECRET_PREFIX = "pdxg_"  # noqa: S105 - a public marker that makes leaked grant secrets greppable
_SECRET_BYTES = 32


class GrantKind(StrEnum):
    DOWNLOAD_TOKEN = "download_token"  # noqa: S105 - a kind of grant, not a secret
    API_KEY = "api_key"
    SANDBOX_SEAT = "sandbox_seat"


def grant_kind(form: DeliveryForm) -> GrantKind:
    if form is DeliveryForm.API:
        return GrantKind.API_KEY
    if form is DeliveryForm.SANDBOX:
        return GrantKind.SANDBOX_SEAT
    return GrantKind.DOWNLOAD_TOKEN


@dataclass(frozen=True)
class Grant:
    id: uuid.UUID
    order_id: uuid.UUID
    buyer_org_id: uuid.UUID
    operator_org_id: uuid.UUID
    product_id: uuid.UUID
    kind: GrantKind
    display_prefix: str | None
    call_quota: int | None
    calls_used: int
    seats: int | None
    expires_at: datetime
    created_at: datetime
    revoked_at: datetime | None
    revocation_reason: str | None

    def usable_at(self, now: datetime) -> bool:
        return self.revoked_at is None and now < self.expires_at


@dataclass(frozen=True)
class IssuedSecret:
    """The only time a grant's secret is shown."""

    secret: str
    grant: Grant


def hash_secret(secret: str) -> str:
    # 256 random bits: nothing to brute-force, and a deterministic hash is found by an index.
    return hashlib.sha256(secret.encode()).hexdigest()


def _grant(row: Any) -> Grant:
    return Grant(
        id=row["id"], order_id=row["order_id"], buyer_org_id=row["buyer_org_id"],
        operator_org_id=row["operator_org_id"], product_id=row["product_id"],
        kind=GrantKind(row["kind"]), display_prefix=row["display_prefix"],
        call_quota=row["call_quota"], calls_used=row["calls_used"], seats=row["seats"],
        expires_at=row["expires_at"], created_at=row["created_at"], revoked_at=row["revoked_at"],
        revocation_reason=row["revocation_reason"])


async def create_grant(*, order_id: uuid.UUID, buyer_org_id: uuid.UUID,
                       operator_org_id: uuid.UUID, product_id: uuid.UUID, form: DeliveryForm,
                       unit: ChargingUnit, quantity: int, expires_at: datetime,
                       now: datetime) -> Grant:
    """The order's grant, inside the caller's (delivery) transaction; once per order."""
    kind = grant_kind(form)
    call_quota = quantity if kind is GrantKind.API_KEY and unit is ChargingUnit.PER_CALL \
        else None
    seats = (quantity if unit is ChargingUnit.PER_PRODUCT else 1) \
        if kind is GrantKind.SANDBOX_SEAT else None
    async with connection() as conn:
        row = await conn.fetchrow(
            "INSERT INTO trading_access_grants (id, order_id, buyer_org_id, operator_org_id, "
            "product_id, kind, call_quota, seats, expires_at, created_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) "
            "ON CONFLICT (order_id) DO UPDATE SET order_id = EXCLUDED.order_id RETURNING *",
            uuid.uuid4(), order_id, buyer_org_id, operator_org_id, product_id, kind.value,
            call_quota, seats, expires_at, now)
    return _grant(row)


async def grant_for_order(order_id: uuid.UUID) -> Grant | None:
    async with connection() as conn:
        row = await conn.fetchrow("SELECT * FROM trading_access_grants WHERE order_id = $1",
                                  order_id)
    return None if row is None else _grant(row)


async def issue_secret(order_id: uuid.UUID, *, buyer_org_id: uuid.UUID,
                       now: datetime) -> IssuedSecret:
    """A new secret for the buyer's grant, replacing any earlier one."""
    secret = SECRET_PREFIX + secrets.token_urlsafe(_SECRET_BYTES)
    async with connection() as conn:
        row = await conn.fetchrow(
            "SELECT * FROM trading_access_grants WHERE order_id = $1 FOR UPDATE", order_id)
        if row is None or row["buyer_org_id"] != buyer_org_id:
            raise NotFoundError("the order has no access grant (yet)", field="order_id")
        grant = _grant(row)
        if not grant.usable_at(now):
            raise ConflictError("the access grant is revoked or expired", field="order_id")
        row = await conn.fetchrow(
            "UPDATE trading_access_grants SET secret_hash = $2, display_prefix = $3 "
            "WHERE id = $1 RETURNING *",
            grant.id, hash_secret(secret), secret[: len(SECRET_PREFIX) + 6])
    return IssuedSecret(secret=secret, grant=_grant(row))


async def use(secret: str, *, operator_org_id: uuid.UUID, buyer_org_id: uuid.UUID | None,
              calls: int, now: datetime) -> Grant:
    """The operator's delivery side presents a secret (and, for a download token, the
    organisation downloading, since the token is bound to the buyer); an API key's use counts
    ``calls`` against its quota, atomically."""
    async with connection() as conn:
        row = await conn.fetchrow(
            "SELECT * FROM trading_access_grants WHERE secret_hash = $1 FOR UPDATE",
            hash_secret(secret))
        # Another operator's grant answers like an unknown one, so secrets cannot be probed.
        if row is None or row["operator_org_id"] != operator_org_id:
            raise NotFoundError("unknown access secret", field="secret")
        grant = _grant(row)
        if not grant.usable_at(now):
            raise PermissionDeniedError("the access grant is revoked or expired", field="secret")
        if grant.kind is GrantKind.DOWNLOAD_TOKEN and buyer_org_id != grant.buyer_org_id:
            raise PermissionDeniedError("the download token belongs to another organisation",
                                        field="buyer_org_id")
        if grant.kind is not GrantKind.API_KEY:
            return grant
        if grant.call_quota is not None and grant.calls_used + calls > grant.call_quota:
            raise ConflictError(
                f"the call quota is used up ({grant.calls_used} of {grant.call_quota})",
                field="calls")
        row = await conn.fetchrow(
            "UPDATE trading_access_grants SET calls_used = calls_used + $2 WHERE id = $1 "
            "RETURNING *", grant.id, calls)
    return _grant(row)


async def revoke_for_order(order_id: uuid.UUID, *, reason: str, now: datetime) -> bool:
    async with connection() as conn:
        status = await conn.execute(
            "UPDATE trading_access_grants SET revoked_at = $2, revocation_reason = $3 "
            "WHERE order_id = $1 AND revoked_at IS NULL", order_id, now, reason)
    return bool(status.endswith(" 1"))


async def active_grant_products(*, now: datetime) -> list[uuid.UUID]:
    """The products with a grant in force at ``now`` (one that ran out of term needs no
    revoking, and there are ever more of those)."""
    async with connection() as conn:
        rows = await conn.fetch(
            "SELECT DISTINCT product_id FROM trading_access_grants "
            "WHERE revoked_at IS NULL AND expires_at > $1", now)
    return [row["product_id"] for row in rows]


async def revoke_for_products(product_ids: list[uuid.UUID], *, reason: str,
                              now: datetime) -> int:
    async with connection() as conn:
        status = await conn.execute(
            "UPDATE trading_access_grants SET revoked_at = $2, revocation_reason = $3 "
            "WHERE product_id = ANY($1::uuid[]) AND revoked_at IS NULL", product_ids, now,
            reason)
    return int(status.rsplit(" ", 1)[-1])
