"""Checking a signed message from a peer exchange before anything of it is believed.

In order: the message is well formed; it is addressed to this exchange; its origin is a peer
the directory knows and holds active; its EIP-712 signature recovers to the chain address the
consortium admitted for that origin. Each failure is a ``MarketError`` naming the field, and
``refusing`` records every refusal of a use case, with the message as evidence, for staff
(issue 7 §9) before it is answered.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from uuid import UUID

import msgspec

from listings.domains import Vocabulary
from listings.errors import ListingsError
from market.errors import InvalidInputError, MarketError, PermissionDeniedError
from market.trading.shared_identity import (
    ExchangeIdentity,
    KnownPeer,
    PeerDirectory,
    RefusalLog,
    evidence,
)
from market.trading.shared_messages import (
    PeerMessage,
    SignatureError,
    SignedEnvelope,
    decode,
    digest,
    recover_signer,
)

T = TypeVar("T")
V = TypeVar("V", bound=Vocabulary)
M = TypeVar("M", bound=PeerMessage)


class ForgedMessageError(MarketError):
    # Convention 6: a message whose signature does not check is a bad request (400).
    problem = "bad-request"
    status = 400
    title = "Bad request"


@dataclass(frozen=True)
class Verified(Generic[M]):
    """A message that passed every check, from ``peer``."""

    message: M
    peer: KnownPeer
    signature: str
    digest: str


def _field(error: msgspec.ValidationError) -> str | None:
    text = str(error)
    marker = "at `$."
    if marker not in text:
        return "message"
    return "message." + text.split(marker, 1)[1].rstrip("`")


async def verify(kind: type[M], envelope: SignedEnvelope, identity: ExchangeIdentity,
                 directory: PeerDirectory) -> Verified[M]:
    try:
        message = decode(kind.TYPE_NAME, envelope.message)
    except msgspec.ValidationError as error:
        raise InvalidInputError(str(error).split(" - at ", 1)[0], field=_field(error)) from None
    if not isinstance(message, kind):  # pragma: no cover - decode returns the named type
        raise TypeError(kind.TYPE_NAME)
    if message.recipient != identity.origin:
        raise InvalidInputError(f"addressed to {message.recipient!r}, not to this exchange "
                                f"({identity.origin!r})", field="message.recipient")
    peer = await directory.peer_by_origin(message.origin)
    if peer is None:
        raise PermissionDeniedError(f"{message.origin!r} is not a peer of this exchange",
                                    field="message.origin")
    if peer.state != "active":
        raise PermissionDeniedError(f"peer {message.origin!r} is {peer.state}",
                                    field="message.origin")
    try:
        signer = recover_signer(message, identity.domain, envelope.signature)
    except SignatureError as error:
        raise ForgedMessageError(str(error), field="signature") from None
    if signer.lower() != peer.chain_address.lower():
        raise ForgedMessageError(
            f"signed by {signer}, not by {peer.chain_address}, the address the consortium "
            f"admitted for {peer.origin!r}", field="signature")
    return Verified(message=message, peer=peer, signature=envelope.signature,
                    digest=digest(message))


def parse_uuid(value: str, field: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        raise InvalidInputError("must be a UUID", field=field) from None


def vocabulary(kind: type[V], value: str, field: str) -> V:
    """The member of ``kind`` a peer's message names, or invalid input naming its field."""
    try:
        return kind.from_wire(value, field)
    except ListingsError as error:
        raise InvalidInputError(error.message, field=field) from None


def claimed_origin(envelope: SignedEnvelope) -> str | None:
    origin = envelope.message.get("origin")
    return origin if isinstance(origin, str) else None


async def refusing(kind: str, envelope: SignedEnvelope, refusals: RefusalLog,
                   work: Callable[[], Awaitable[T]]) -> T:
    """Run ``work``; a refusal it raises is recorded for staff (in a transaction of its own,
    after ``work``'s has rolled back) and then raised to the caller."""
    try:
        return await work()
    except MarketError as error:
        record: dict[str, Any] = evidence(envelope.message, envelope.signature)
        record["field"] = error.field
        await refusals.record_refusal(kind, error.detail, peer_origin=claimed_origin(envelope),
                                      evidence=record)
        raise
