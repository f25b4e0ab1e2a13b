"""Use cases of accounts: organisations, users, and the API tokens that authenticate them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from asyncpg.exceptions import UniqueViolationError

from market.accounts.model import (
    ROLE_OF_KIND,
    IssuedToken,
    OrganisationKind,
    Principal,
    Role,
    hash_token,
    issue_token,
    looks_like_token,
)
from market.accounts.tables import ApiToken, Organisation, User
from market.errors import AuthenticationError, ConflictError, NotFoundError

# Staff and the regulator oversee every organisation; everyone else sees only their own.
OVERSEEING_ROLES = frozenset({Role.STAFF, Role.REGULATOR})
# How fresh a token's last use is kept. Writing it on every request would make all concurrent
# requests of one client queue on the token's row lock (and a commit each); "last used" only
# has to tell an idle token from a live one.
LAST_USE_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class OrganisationRecord:
    id: UUID
    name: str
    kind: OrganisationKind
    created_at: datetime


@dataclass(frozen=True)
class UserRecord:
    id: UUID
    organisation_id: UUID
    email: str
    display_name: str
    role: Role
    active: bool


@dataclass(frozen=True)
class TokenRecord:
    id: UUID
    user_id: UUID
    label: str
    display_prefix: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


@dataclass(frozen=True)
class NewToken:
    record: TokenRecord
    secret: str


def utc_now() -> datetime:
    return datetime.now(UTC)


async def create_organisation(name: str, kind: OrganisationKind) -> OrganisationRecord:
    record = OrganisationRecord(id=uuid4(), name=name.strip(), kind=kind, created_at=utc_now())
    try:
        await Organisation.insert(
            Organisation(id=record.id, name=record.name, kind=record.kind.value,
                         created_at=record.created_at)
        ).run()
    except UniqueViolationError:
        raise ConflictError(f"an organisation named {record.name!r} already exists",
                            field="name") from None
    return record


async def find_organisation_by_name(name: str) -> OrganisationRecord | None:
    row = await Organisation.select().where(Organisation.name == name).first().run()
    return None if row is None else _organisation(row)


async def get_organisation(viewer: Principal, organisation_id: UUID) -> OrganisationRecord:
    if viewer.role not in OVERSEEING_ROLES and viewer.organisation_id != organisation_id:
        raise NotFoundError("no such organisation")
    row = await Organisation.select().where(Organisation.id == organisation_id).first().run()
    if row is None:
        raise NotFoundError("no such organisation")
    return _organisation(row)


async def list_organisations(viewer: Principal) -> list[OrganisationRecord]:
    query = Organisation.select().order_by(Organisation.name)
    if viewer.role not in OVERSEEING_ROLES:
        query = query.where(Organisation.id == viewer.organisation_id)
    return [_organisation(row) for row in await query.run()]


async def create_user(organisation_id: UUID, email: str, display_name: str) -> UserRecord:
    organisation = await Organisation.select().where(
        Organisation.id == organisation_id).first().run()
    if organisation is None:
        raise NotFoundError("no such organisation", field="organisation_id")
    role = ROLE_OF_KIND[OrganisationKind(organisation["kind"])]
    record = UserRecord(id=uuid4(), organisation_id=organisation_id, email=email.strip().lower(),
                        display_name=display_name.strip(), role=role, active=True)
    try:
        await User.insert(
            User(id=record.id, organisation_id=organisation_id, email=record.email,
                 display_name=record.display_name, role=role.value, active=True,
                 created_at=utc_now())
        ).run()
    except UniqueViolationError:
        raise ConflictError(f"a user with email {record.email!r} already exists",
                            field="email") from None
    return record


async def find_user_by_email(email: str) -> UserRecord | None:
    row = await User.select().where(User.email == email.strip().lower()).first().run()
    return None if row is None else _user(row)


async def list_users(viewer: Principal, organisation_id: UUID) -> list[UserRecord]:
    await get_organisation(viewer, organisation_id)
    rows = await User.select().where(User.organisation_id == organisation_id).order_by(
        User.email).run()
    return [_user(row) for row in rows]


async def issue_api_token(user_id: UUID, label: str, ttl: timedelta) -> NewToken:
    user = await User.select(User.active).where(User.id == user_id).first().run()
    if user is None:
        raise NotFoundError("no such user", field="user_id")
    if not user["active"]:
        raise ConflictError("the user is deactivated", field="user_id")
    now = utc_now()
    issued: IssuedToken = issue_token(now, ttl)
    record = TokenRecord(id=uuid4(), user_id=user_id, label=label.strip(),
                         display_prefix=issued.display_prefix, created_at=now,
                         expires_at=issued.expires_at, revoked_at=None, last_used_at=None)
    await ApiToken.insert(
        ApiToken(id=record.id, user_id=user_id, token_hash=issued.token_hash,
                 display_prefix=record.display_prefix, label=record.label,
                 created_at=now, expires_at=record.expires_at)
    ).run()
    return NewToken(record=record, secret=issued.secret)


async def authenticate(secret: str) -> Principal:
    """The principal a bearer token stands for; the reason for refusal is kept precise for logs
    but the caller learns only that the token is not valid (or has expired or been revoked)."""
    if not looks_like_token(secret):
        raise AuthenticationError("the bearer token is malformed")
    rows = await ApiToken.raw(
        """
        SELECT t.id, t.expires_at, t.revoked_at, t.last_used_at, u.id AS user_id,
               u.organisation_id, u.role, u.active
        FROM api_tokens t JOIN users u ON u.id = t.user_id
        WHERE t.token_hash = {}
        """,
        hash_token(secret),
    ).run()
    if not rows:
        raise AuthenticationError("the bearer token is not valid")
    row = rows[0]
    now = utc_now()
    if row["revoked_at"] is not None:
        raise AuthenticationError("the bearer token has been revoked")
    if row["expires_at"] <= now:
        raise AuthenticationError("the bearer token has expired")
    if not row["active"]:
        raise AuthenticationError("the user of this token is deactivated")
    if row["last_used_at"] is None or now - row["last_used_at"] >= LAST_USE_RESOLUTION:
        await ApiToken.update({ApiToken.last_used_at: now}).where(ApiToken.id == row["id"]).run()
    return Principal(user_id=row["user_id"], organisation_id=row["organisation_id"],
                     role=Role(row["role"]), token_id=row["id"])


async def list_tokens(user_id: UUID) -> list[TokenRecord]:
    rows = await ApiToken.select().where(ApiToken.user_id == user_id).order_by(
        ApiToken.created_at).run()
    return [_token(row) for row in rows]


async def revoke_token(viewer: Principal, token_id: UUID) -> TokenRecord:
    """Revoke one of the viewer's own tokens (staff may revoke anyone's)."""
    query = ApiToken.select().where(ApiToken.id == token_id)
    if viewer.role is not Role.STAFF:
        query = query.where(ApiToken.user_id == viewer.user_id)
    row = await query.first().run()
    if row is None:
        raise NotFoundError("no such token")
    return await revoke_token_by_id(row["id"])


async def revoke_token_by_id(token_id: UUID) -> TokenRecord:
    # Revoking twice keeps the first revocation time: the record says when access really ended.
    await ApiToken.update({ApiToken.revoked_at: utc_now()}).where(
        (ApiToken.id == token_id) & ApiToken.revoked_at.is_null()).run()
    row = await ApiToken.select().where(ApiToken.id == token_id).first().run()
    if row is None:
        raise NotFoundError("no such token")
    return _token(row)


async def purge_expired_tokens(older_than: timedelta) -> int:
    """Delete tokens that expired or were revoked more than `older_than` ago; returns how many."""
    cutoff = utc_now() - older_than
    deleted = await ApiToken.delete().where(
        (ApiToken.expires_at < cutoff) | (ApiToken.revoked_at < cutoff)
    ).returning(ApiToken.id).run()
    return len(deleted)


async def get_user(viewer: Principal, user_id: UUID) -> UserRecord:
    row = await User.select().where(User.id == user_id).first().run()
    if row is None or (viewer.role not in OVERSEEING_ROLES
                       and row["organisation_id"] != viewer.organisation_id):
        raise NotFoundError("no such user")
    return _user(row)


def _organisation(row: Mapping[str, Any]) -> OrganisationRecord:
    return OrganisationRecord(id=row["id"], name=row["name"], kind=OrganisationKind(row["kind"]),
                              created_at=row["created_at"])


def _user(row: Mapping[str, Any]) -> UserRecord:
    return UserRecord(id=row["id"], organisation_id=row["organisation_id"], email=row["email"],
                      display_name=row["display_name"], role=Role(row["role"]),
                      active=bool(row["active"]))


def _token(row: Mapping[str, Any]) -> TokenRecord:
    return TokenRecord(id=row["id"], user_id=row["user_id"], label=row["label"],
                       display_prefix=row["display_prefix"], created_at=row["created_at"],
                       expires_at=row["expires_at"], revoked_at=row["revoked_at"],
                       last_used_at=row["last_used_at"])
