"""EIP-712 messages between exchanges: signatures recover to the signer, and the receiver's
checks refuse forged signatures, wrong senders, unknown or suspended peers, messages addressed
elsewhere, replays and stale versions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import msgspec
import pytest
from eth_account import Account

from market.errors import ConflictError, InvalidInputError, PermissionDeniedError
from market.trading.shared_demands import _matching_view, _redelivered, _values
from market.trading.shared_identity import ExchangeIdentity, KnownPeer
from market.trading.shared_inbox import ForgedMessageError, verify
from market.trading.shared_messages import (
    OfferDecision,
    SharedDemand,
    SignedEnvelope,
    SigningDomain,
    UnitBudget,
    digest,
    envelope,
    recover_signer,
    sign,
    typed_data,
)
from market.trading.shared_store import PeerDemandRecord

TODAY = datetime.now(UTC).date()
PEER_KEY = "0x" + "11" * 32
OTHER_KEY = "0x" + "22" * 32
HERE_KEY = "0x" + "33" * 32
DOMAIN = SigningDomain(31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3")
HERE = ExchangeIdentity(origin="here.test/ledger", name="本所", private_key=HERE_KEY,
                        domain=DOMAIN)


@dataclass(frozen=True)
class Peer:
    origin: str
    name: str
    chain_address: str
    api_base_url: str
    state: str


PEER = Peer("peer.test/ledger", "对端交易所", str(Account.from_key(PEER_KEY).address),
            "http://peer.test", "active")


class Directory:
    def __init__(self, *peers: Peer) -> None:
        self._peers = {peer.origin: peer for peer in peers}

    async def active_peers(self) -> Sequence[KnownPeer]:
        return [peer for peer in self._peers.values() if peer.state == "active"]

    async def peer_by_origin(self, origin: str) -> KnownPeer | None:
        return self._peers.get(origin)


def shared_demand(**overrides: object) -> SharedDemand:
    message = SharedDemand(
        origin=PEER.origin, recipient=HERE.origin, demand_id=str(uuid4()), version=1,
        state="open", close_reason="", title="采购城市逐小时气象数据",
        description="物流企业需要城市逐小时降水数据接口。", domains=["meteorology"],
        purpose="industry", has_budget_per_unit=False, budget_minor_per_unit=0,
        unit_budgets=[UnitBudget(unit="per_call", amount_minor=100)], currency="CNY",
        delivery_forms=["api"], grade_clearance="general",
        deadline=(TODAY + timedelta(days=30)).isoformat(),
        issued_at=int(datetime.now(UTC).timestamp()))
    return msgspec.structs.replace(message, **overrides)


def signed(message: SharedDemand, key: str = PEER_KEY,
           domain: SigningDomain = DOMAIN) -> SignedEnvelope:
    return msgspec.convert(envelope(message, sign(message, domain, key)), SignedEnvelope)


def test_a_signature_recovers_to_its_signer() -> None:
    message = shared_demand()
    assert recover_signer(message, DOMAIN, sign(message, DOMAIN, PEER_KEY)) == PEER.chain_address


def test_the_typed_data_names_the_consortium_domain() -> None:
    document = typed_data(shared_demand(), DOMAIN)
    assert document["primaryType"] == "SharedDemand"
    assert document["domain"]["chainId"] == 31337
    assert document["domain"]["verifyingContract"] == DOMAIN.verifying_contract
    assert [m["name"] for m in document["types"]["UnitBudget"]] == ["unit", "amountMinor"]
    # Nothing of the buyer travels: no names, organisations or contacts.
    assert not {"buyerOrgId", "buyer", "email", "contact"} & set(document["message"])


async def test_a_well_signed_message_from_an_active_peer_passes() -> None:
    message = shared_demand()
    verified = await verify(SharedDemand, signed(message), HERE, Directory(PEER))
    assert verified.message == message
    assert verified.peer.origin == PEER.origin
    assert verified.digest == digest(message)


async def test_an_altered_message_is_refused_as_forged() -> None:
    original = signed(shared_demand())
    altered = dict(original.message, title="另一个标题")
    with pytest.raises(ForgedMessageError) as refused:
        await verify(SharedDemand, SignedEnvelope(altered, original.signature), HERE,
                     Directory(PEER))
    assert refused.value.field == "signature"
    assert PEER.chain_address in refused.value.detail


async def test_a_message_signed_by_another_key_is_refused() -> None:
    with pytest.raises(ForgedMessageError, match="not by"):
        await verify(SharedDemand, signed(shared_demand(), OTHER_KEY), HERE, Directory(PEER))


async def test_a_signature_for_another_chain_or_contract_is_refused() -> None:
    for domain in (replace(DOMAIN, chain_id=1),
                   replace(DOMAIN, verifying_contract="0x" + "ab" * 20)):
        with pytest.raises(ForgedMessageError):
            await verify(SharedDemand, signed(shared_demand(), domain=domain), HERE,
                         Directory(PEER))


async def test_garbage_signatures_are_bad_requests() -> None:
    message = signed(shared_demand()).message
    for signature in ("0xzz", "0x" + "00" * 10, "0x" + "00" * 65):
        with pytest.raises(ForgedMessageError) as refused:
            await verify(SharedDemand, SignedEnvelope(message, signature), HERE, Directory(PEER))
        assert refused.value.status == 400


async def test_unknown_and_suspended_senders_are_forbidden() -> None:
    with pytest.raises(PermissionDeniedError, match="not a peer"):
        await verify(SharedDemand, signed(shared_demand()), HERE, Directory())
    suspended = replace(PEER, state="suspended")
    with pytest.raises(PermissionDeniedError, match="suspended"):
        await verify(SharedDemand, signed(shared_demand()), HERE, Directory(suspended))


async def test_a_message_addressed_to_another_exchange_is_refused() -> None:
    with pytest.raises(InvalidInputError) as refused:
        await verify(SharedDemand, signed(shared_demand(recipient="elsewhere.test/ledger")),
                     HERE, Directory(PEER))
    assert refused.value.field == "message.recipient"


async def test_a_malformed_message_names_the_field() -> None:
    good = signed(shared_demand())
    bad = dict(good.message, version=-1)
    with pytest.raises(InvalidInputError) as refused:
        await verify(SharedDemand, SignedEnvelope(bad, good.signature), HERE, Directory(PEER))
    assert refused.value.field == "message.version"
    with pytest.raises(InvalidInputError):
        await verify(OfferDecision, good, HERE, Directory(PEER))


def held(message: SharedDemand) -> PeerDemandRecord:
    values = _values(message, PEER.origin)
    now = datetime.now(UTC)
    return PeerDemandRecord(
        id=uuid4(), origin=values.origin, remote_demand_id=values.remote_demand_id,
        version=values.version, state=values.state, close_reason=values.close_reason,
        demand=_matching_view(values), currency=values.currency, digest=digest(message),
        received_at=now, updated_at=now)


def test_the_same_version_again_is_a_redelivery_and_a_different_one_a_replay() -> None:
    first = shared_demand(version=2)
    record = held(first)
    assert _redelivered(record, _values(first, PEER.origin), digest(first), TODAY) is record
    changed = msgspec.structs.replace(first, title="改过的标题")
    with pytest.raises(ConflictError, match="other content"):
        _redelivered(record, _values(changed, PEER.origin), digest(changed), TODAY)


def test_an_older_version_is_stale() -> None:
    current = shared_demand(version=3)
    older = msgspec.structs.replace(current, version=2)
    with pytest.raises(ConflictError, match="older than version 3"):
        _redelivered(held(current), _values(older, PEER.origin), digest(older), TODAY)


def test_a_newer_version_is_taken_and_an_expired_open_demand_is_refused() -> None:
    current = shared_demand(version=1)
    newer = msgspec.structs.replace(current, version=2, state="closed",
                                    close_reason="withdrawn")
    assert _redelivered(held(current), _values(newer, PEER.origin), digest(newer),
                        TODAY) is None
    past = (TODAY - timedelta(days=1)).isoformat()
    expired = shared_demand(deadline=past)
    with pytest.raises(InvalidInputError) as refused:
        _redelivered(None, _values(expired, PEER.origin), digest(expired), TODAY)
    assert refused.value.field == "message.deadline"
    # A closure still reaches peers after the deadline (a demand that expired is closed).
    closed = shared_demand(deadline=past, state="closed", close_reason="expired")
    assert _redelivered(None, _values(closed, PEER.origin), digest(closed), TODAY) is None


def test_values_are_checked_as_for_a_local_demand() -> None:
    for overrides, field in (({"domains": ["astrology"]}, "message.domains[0]"),
                             ({"state": "closed"}, "message.closeReason"),
                             ({"currency": "USD"}, "message.currency"),
                             ({"deadline": "soon"}, "message.deadline"),
                             ({"demand_id": "x"}, "message.demandId"),
                             ({"title": " "}, "message.title")):
        with pytest.raises(InvalidInputError) as refused:
            _values(shared_demand(**overrides), PEER.origin)
        assert refused.value.field == field, overrides
