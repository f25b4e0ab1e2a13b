"""Organisations, users, roles and API tokens: the rules, with no I/O."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from uuid import UUID

TOKEN_PREFIX = "pdx_"  # noqa: S105 - a public marker that makes leaked tokens greppable
_TOKEN_SECRET_BYTES = 32


class OrganisationKind(StrEnum):
    AUTHORIZING_BODY = "authorizing_body"
    EXCHANGE = "exchange"
    OPERATOR = "operator"
    ENTERPRISE = "enterprise"
    PEER_EXCHANGE = "peer_exchange"


class Role(StrEnum):
    REGULATOR = "regulator"
    STAFF = "staff"
    OPERATOR = "operator"
    BUYER = "buyer"
    PEER = "peer"


# A user acts for its organisation, so its role follows from the organisation's kind.
ROLE_OF_KIND: dict[OrganisationKind, Role] = {
    OrganisationKind.AUTHORIZING_BODY: Role.REGULATOR,
    OrganisationKind.EXCHANGE: Role.STAFF,
    OrganisationKind.OPERATOR: Role.OPERATOR,
    OrganisationKind.ENTERPRISE: Role.BUYER,
    OrganisationKind.PEER_EXCHANGE: Role.PEER,
}


@dataclass(frozen=True)
class Principal:
    """Who is calling: the authenticated user, its organisation and role."""

    user_id: UUID
    organisation_id: UUID
    role: Role
    token_id: UUID


@dataclass(frozen=True)
class IssuedToken:
    """A new token: `secret` is shown once to its holder and never stored."""

    secret: str
    token_hash: str
    display_prefix: str
    expires_at: datetime


def issue_token(now: datetime, ttl: timedelta) -> IssuedToken:
    if ttl <= timedelta(0):
        raise ValueError("a token's lifetime must be positive")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(_TOKEN_SECRET_BYTES)
    return IssuedToken(
        secret=secret,
        token_hash=hash_token(secret),
        display_prefix=secret[: len(TOKEN_PREFIX) + 6],
        expires_at=now + ttl,
    )


def hash_token(secret: str) -> str:
    # A plain SHA-256 suffices: the secret has 256 bits of entropy, so there is nothing to
    # brute-force, and a deterministic hash lets the database find the token by an index.
    return hashlib.sha256(secret.encode()).hexdigest()


def looks_like_token(value: str) -> bool:
    return value.startswith(TOKEN_PREFIX) and 20 <= len(value) <= 100 and value.isascii()
