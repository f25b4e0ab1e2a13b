"""Organisations, users and API tokens over HTTP."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated
from uuid import UUID

import msgspec
from litestar import Controller, delete, get, post
from litestar.di import Provide
from litestar.params import FromPath, JSONBody

from market.accounts import service
from market.accounts.model import OrganisationKind, Role
from market.api.access import AUTHENTICATED, Caller, provide_principal, roles

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=r"\S")]
Email = Annotated[str, msgspec.Meta(min_length=3, max_length=254,
                                    pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
Label = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=r"\S")]
TokenLifetimeDays = Annotated[int, msgspec.Meta(ge=1, le=3650)]

PRINCIPAL = {"principal": Provide(provide_principal, sync_to_thread=False)}


class OrganisationCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: Name
    kind: OrganisationKind


class Organisation(msgspec.Struct):
    id: UUID
    name: str
    kind: OrganisationKind
    created_at: datetime


class UserCreate(msgspec.Struct, forbid_unknown_fields=True):
    email: Email
    display_name: Name


class User(msgspec.Struct):
    id: UUID
    organisation_id: UUID
    email: str
    display_name: str
    role: Role
    active: bool


class TokenCreate(msgspec.Struct, forbid_unknown_fields=True):
    label: Label
    lifetime_days: TokenLifetimeDays = 90


class Token(msgspec.Struct):
    id: UUID
    user_id: UUID
    label: str
    display_prefix: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


class IssuedToken(msgspec.Struct):
    """The only time the secret is shown: it is stored as a hash and cannot be recovered."""

    token: str
    details: Token


class Whoami(msgspec.Struct):
    user: User
    organisation: Organisation


def _organisation(record: service.OrganisationRecord) -> Organisation:
    return Organisation(id=record.id, name=record.name, kind=record.kind,
                        created_at=record.created_at)


def _user(record: service.UserRecord) -> User:
    return User(id=record.id, organisation_id=record.organisation_id, email=record.email,
                display_name=record.display_name, role=record.role, active=record.active)


def _token(record: service.TokenRecord) -> Token:
    return Token(id=record.id, user_id=record.user_id, label=record.label,
                 display_prefix=record.display_prefix, created_at=record.created_at,
                 expires_at=record.expires_at, revoked_at=record.revoked_at,
                 last_used_at=record.last_used_at)


def _issued(new: service.NewToken) -> IssuedToken:
    return IssuedToken(token=new.secret, details=_token(new.record))


class OrganisationController(Controller):
    path = "/organisations"
    tags = ["accounts"]
    dependencies = PRINCIPAL
    opt = AUTHENTICATED

    @post("/", opt=roles(Role.STAFF), summary="Register an organisation (staff)")
    async def create_organisation(self, data: JSONBody[OrganisationCreate]) -> Organisation:
        return _organisation(await service.create_organisation(data.name, data.kind))

    @get("/", summary="Organisations the caller may see: its own, or all for staff and regulator")
    async def list_organisations(self, principal: Caller) -> list[Organisation]:
        return [_organisation(r) for r in await service.list_organisations(principal)]

    @get("/{organisation_id:uuid}", summary="One organisation")
    async def get_organisation(self, principal: Caller,
                               organisation_id: FromPath[UUID]) -> Organisation:
        return _organisation(await service.get_organisation(principal, organisation_id))

    @get("/{organisation_id:uuid}/users", summary="Users of an organisation")
    async def list_users(self, principal: Caller, organisation_id: FromPath[UUID]) -> list[User]:
        return [_user(r) for r in await service.list_users(principal, organisation_id)]

    @post("/{organisation_id:uuid}/users", opt=roles(Role.STAFF),
          summary="Add a user to an organisation (staff); the role follows the organisation")
    async def create_user(self, organisation_id: FromPath[UUID],
                          data: JSONBody[UserCreate]) -> User:
        return _user(await service.create_user(organisation_id, data.email, data.display_name))


class TokenController(Controller):
    path = "/"
    tags = ["accounts"]
    dependencies = PRINCIPAL
    opt = AUTHENTICATED

    @get("/me", summary="The caller: its user and organisation")
    async def whoami(self, principal: Caller) -> Whoami:
        user = await service.get_user(principal, principal.user_id)
        organisation = await service.get_organisation(principal, principal.organisation_id)
        return Whoami(user=_user(user), organisation=_organisation(organisation))

    @get("/me/tokens", summary="The caller's API tokens (never their secrets)")
    async def list_my_tokens(self, principal: Caller) -> list[Token]:
        return [_token(r) for r in await service.list_tokens(principal.user_id)]

    @post("/me/tokens", summary="Issue a new API token for the caller; the secret is shown once")
    async def issue_my_token(self, principal: Caller, data: JSONBody[TokenCreate]) -> IssuedToken:
        return _issued(await service.issue_api_token(
            principal.user_id, data.label, timedelta(days=data.lifetime_days)))

    @post("/users/{user_id:uuid}/tokens", opt=roles(Role.STAFF),
          summary="Issue an API token for a user (staff); the secret is shown once")
    async def issue_token_for_user(self, user_id: FromPath[UUID],
                                   data: JSONBody[TokenCreate]) -> IssuedToken:
        return _issued(await service.issue_api_token(
            user_id, data.label, timedelta(days=data.lifetime_days)))

    @delete("/tokens/{token_id:uuid}", status_code=200,
            summary="Revoke a token: one's own, or anyone's for staff")
    async def revoke_token(self, principal: Caller, token_id: FromPath[UUID]) -> Token:
        return _token(await service.revoke_token(principal, token_id))
