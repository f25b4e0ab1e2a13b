"""The peer exchanges configured here (issue 7 §1): each from its signed profile, checked
against the consortium contract (a member, admitted under the profile's origin), and ledgered.

Configuring a peer again with a newer profile (a new API address, a rotated key that the
consortium still backs) updates it; a peer can be suspended and reactivated by staff.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from piccolo.engine.postgres import PostgresTransaction

from ledger.log import append_record
from ledger.note import NoteVerifier
from ledger.profile import ExchangeProfile, open_profile
from ledger.recognition import (
    ConsortiumReader,
    RecognitionError,
    fetch_from_peer,
    verify_peer_profile,
)
from market.errors import InvalidInputError, NotFoundError
from market.peering.ledger_records import PEER_CONFIGURED, PEER_STATE_CHANGED
from market.peering.links import PeerLinks
from market.peering.refusals import record_refusal
from market.peering.tables import PeerRow

PEER_STATES = ("active", "suspended")


@dataclass(frozen=True)
class Peer:
    id: int
    origin: str
    name: str
    vkey: str
    chain_address: str
    api_base_url: str
    code_issuer: str | None
    state: str
    profile_note: str
    configured_by: str
    configured_at: datetime

    @property
    def verifier(self) -> NoteVerifier:
        return NoteVerifier.from_vkey(self.vkey)

    @property
    def profile(self) -> ExchangeProfile:
        # The stored note was verified when configured; re-opening it re-checks the signature.
        return open_profile(self.profile_note, expected_vkey=self.vkey)


_COLUMNS = ("id, origin, name, vkey, chain_address, api_base_url, code_issuer, state, "
            "profile_note, configured_by, configured_at")


def _peer(row: dict[str, Any]) -> Peer:
    return Peer(**row)


def _transaction() -> PostgresTransaction:
    transaction: PostgresTransaction = PeerRow._meta.db.transaction()
    return transaction


async def _select(where: str, *args: object) -> list[Peer]:
    rows = await PeerRow.raw(
        f"SELECT {_COLUMNS} FROM peering_peers WHERE {where} ORDER BY origin",  # noqa: S608 -- constant SQL
        *args).run()
    return [_peer(dict(row)) for row in rows]


async def all_peers() -> list[Peer]:
    return await _select("TRUE")


async def active_peers() -> list[Peer]:
    return await _select("state = 'active'")


async def peer_by_origin(origin: str) -> Peer | None:
    found = await _select("origin = {}", origin)
    return found[0] if found else None


async def peer_by_chain_address(address: str) -> Peer | None:
    found = await _select("lower(chain_address) = lower({})", address)
    return found[0] if found else None


async def _refuse_profile(reason: str, profile_note: str) -> InvalidInputError:
    await record_refusal("profile", reason, peer_origin=None,
                         evidence={"profile_note": profile_note})
    return InvalidInputError(reason, field="profile")


async def add_peer(profile_note: str, reader: ConsortiumReader, *, fetched_from: str,
                   actor: str = "system", own_origin: str | None = None,
                   rotate_key: bool = False) -> Peer:
    """Configure (or update) the peer whose signed profile was read at `fetched_from`, once
    the consortium contract confirms it; a refused profile is kept for staff.

    The contract binds the peer's origin to its chain account but not to its checkpoint key,
    so the key is pinned here on first use: a profile with another key for a configured origin
    is refused unless staff rotate the key on purpose (`rotate_key`), which is ledgered.
    """
    try:
        profile = await verify_peer_profile(profile_note, reader)
    except RecognitionError as error:
        raise await _refuse_profile(str(error), profile_note) from error
    if profile.origin == own_origin:
        raise InvalidInputError("that profile is this exchange's own", field="profile")
    if profile.api_base_url.rstrip("/") != fetched_from.rstrip("/"):
        raise await _refuse_profile(
            f"the profile read at {fetched_from} names another API, {profile.api_base_url}",
            profile_note)
    known = await peer_by_origin(profile.origin)
    if known is not None and known.vkey != profile.vkey and not rotate_key:
        raise await _refuse_profile(
            f"the profile for {profile.origin} names a key other than the one configured "
            f"({known.vkey}); rotate it on purpose if the peer changed its key", profile_note)
    assert profile.chain_address is not None  # verify_peer_profile requires one
    now = datetime.now(UTC)
    async with _transaction():
        leaf = await append_record(
            PEER_CONFIGURED, actor=actor, subject=profile.origin,
            payload={"origin": profile.origin, "name": profile.name, "vkey": profile.vkey,
                     "chain_address": profile.chain_address, "api": profile.api_base_url,
                     "key_rotated": known is not None and known.vkey != profile.vkey})
        await PeerRow.raw(
            "INSERT INTO peering_peers (origin, name, vkey, chain_address, api_base_url, "
            "code_issuer, state, profile_note, configured_by, leaf_index, configured_at) "
            "VALUES ({}, {}, {}, {}, {}, {}, 'active', {}, {}, {}, {}) "
            "ON CONFLICT (origin) DO UPDATE SET name = EXCLUDED.name, vkey = EXCLUDED.vkey, "
            "chain_address = EXCLUDED.chain_address, api_base_url = EXCLUDED.api_base_url, "
            "code_issuer = EXCLUDED.code_issuer, profile_note = EXCLUDED.profile_note, "
            "configured_by = EXCLUDED.configured_by, leaf_index = EXCLUDED.leaf_index, "
            "configured_at = EXCLUDED.configured_at",
            profile.origin, profile.name, profile.vkey, profile.chain_address,
            profile.api_base_url, profile.code_issuer, profile_note, actor, leaf.leaf_index,
            now).run()
    peer = await peer_by_origin(profile.origin)
    assert peer is not None
    return peer


async def add_peer_at(api_base_url: str, links: PeerLinks, *, actor: str,
                      own_origin: str | None, rotate_key: bool) -> Peer:
    """Configure the peer whose API is at `api_base_url`, from the signed profile it serves."""
    url = api_base_url.rstrip("/")
    try:
        response = await fetch_from_peer(links.client, f"{url}/exchange/profile")
    except RecognitionError as error:
        raise InvalidInputError(f"cannot read the peer's profile: {error}",
                                field="api_base_url") from error
    return await add_peer(response.text, links.reader, fetched_from=url, actor=actor,
                          own_origin=own_origin, rotate_key=rotate_key)


async def set_state(peer_id: int, state: str, *, actor: str) -> Peer:
    """Suspend a peer (its claims are refused and what was recognised from it is withdrawn
    by the next watch) or reactivate it."""
    if state not in PEER_STATES:
        raise InvalidInputError(f"state must be one of {', '.join(PEER_STATES)}", field="state")
    async with _transaction():
        rows = await PeerRow.raw(
            "UPDATE peering_peers SET state = {}, state_changed_by = {} WHERE id = {} "
            "RETURNING origin", state, actor, peer_id).run()
        if not rows:
            raise NotFoundError("no such peer", field="peer_id")
        origin = rows[0]["origin"]
        await append_record(PEER_STATE_CHANGED, actor=actor, subject=origin,
                            payload={"origin": origin, "state": state})
    peer = await peer_by_origin(origin)
    assert peer is not None
    return peer
