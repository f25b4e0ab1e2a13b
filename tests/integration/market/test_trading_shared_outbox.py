"""The outbox of shared demand on real PostgreSQL: each state change of a public-pool demand is
a version written in its transaction; the delivery job queues each active peer the latest
version it lacks (a peer admitted later gets the open demands, not the closed ones), and a
delivery whose claim lapsed and was claimed again cannot be recorded by its first worker."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta

import httpx
import msgspec

from listings.domains import DataDomain, DeliveryForm, Grade, Purpose
from market.accounts.model import Principal, Role
from market.trading import demands, shared_outbox, shared_store
from market.trading.shared_identity import ExchangeIdentity, KnownPeer
from market.trading.shared_messages import SigningDomain
from market.trading.store import Visibility
from tests.factories import make_account

TODAY = datetime.now(UTC).date()
IDENTITY = ExchangeIdentity(origin="here.test/ledger", name="本所", private_key="0x" + "33" * 32,
                            domain=SigningDomain(31337, "0x" + "ab" * 20))


@dataclass(frozen=True)
class Peer:
    origin: str
    name: str = "对端"
    chain_address: str = "0x" + "00" * 20
    api_base_url: str = "http://peer.test"
    state: str = "active"


class Directory:
    def __init__(self, *peers: Peer) -> None:
        self.peers = list(peers)

    async def active_peers(self) -> Sequence[KnownPeer]:
        return [peer for peer in self.peers if peer.state == "active"]

    async def peer_by_origin(self, origin: str) -> KnownPeer | None:
        return next((peer for peer in self.peers if peer.origin == origin), None)


def new_demand(visibility: Visibility, deadline: date) -> demands.NewDemand:
    return demands.NewDemand(
        title="采购农业气象灾害预警数据", description="农业保险定损需要县级干旱和霜冻预警。",
        domains=[DataDomain.METEOROLOGY], purpose=Purpose.INDUSTRY, budget_minor_per_unit=500,
        unit_budgets_minor={}, delivery_forms=[DeliveryForm.REPORT],
        grade_clearance=Grade.GENERAL, deadline=deadline, visibility=visibility)


async def buyer() -> Principal:
    account = await make_account(Role.BUYER)
    return Principal(account.user.id, account.organisation.id, Role.BUYER,
                     account.token_id)  # type: ignore[arg-type]


def recording_client(sent: list[dict[str, object]], status: int = 200) -> httpx.AsyncClient:
    def handle(request: httpx.Request) -> httpx.Response:
        sent.append(msgspec.json.decode(request.content))
        return httpx.Response(status)

    return httpx.AsyncClient(transport=httpx.MockTransport(handle))


async def test_versions_reach_every_peer_and_late_peers_get_only_open_demands(db: str) -> None:
    caller = await buyer()
    deadline = TODAY + timedelta(days=20)
    open_demand = await demands.post(caller, new_demand(Visibility.PUBLIC_POOL, deadline),
                                     today=TODAY)
    withdrawn = await demands.post(caller, new_demand(Visibility.PUBLIC_POOL, deadline),
                                   today=TODAY)
    await demands.post(caller, new_demand(Visibility.EXCHANGE, deadline), today=TODAY)
    directory = Directory(Peer("a.test/ledger"))
    sent: list[dict[str, object]] = []
    async with recording_client(sent) as client:
        first = await shared_outbox.deliver_due(IDENTITY, directory, today=TODAY, client=client)
    assert (first.queued, first.delivered) == (2, 2)

    await demands.withdraw(caller, withdrawn.id)
    directory.peers.append(Peer("b.test/ledger"))
    async with recording_client(sent) as client:
        second = await shared_outbox.deliver_due(IDENTITY, directory, today=TODAY,
                                                 client=client)
    # a: the withdrawal (version 2); b: the open demand only, never the closed one.
    assert (second.queued, second.delivered) == (2, 2)
    got = sorted((str(body["message"]["recipient"]), str(body["message"]["demandId"]),  # type: ignore[index]
                  body["message"]["version"], body["message"]["state"])  # type: ignore[index]
                 for body in sent)
    assert got == sorted([
        ("a.test/ledger", str(open_demand.id), 1, "open"),
        ("a.test/ledger", str(withdrawn.id), 1, "open"),
        ("a.test/ledger", str(withdrawn.id), 2, "closed"),
        ("b.test/ledger", str(open_demand.id), 1, "open"),
    ])
    async with recording_client(sent) as client:
        third = await shared_outbox.deliver_due(IDENTITY, directory, today=TODAY, client=client)
    assert (third.queued, third.delivered) == (0, 0)


async def test_a_suspended_peer_gets_nothing_and_a_lapsed_claim_is_not_recorded(db: str) -> None:
    caller = await buyer()
    await demands.post(caller, new_demand(Visibility.PUBLIC_POOL, TODAY + timedelta(days=5)),
                       today=TODAY)
    peer = Peer("a.test/ledger")
    directory = Directory(peer)
    now = datetime.now(UTC)
    async with demands.transaction():
        await shared_store.fan_out_demand_versions(peer.origin, TODAY, now)
        (claimed,) = await shared_store.claim_due_deliveries(now, now + shared_outbox.LEASE, 10)
    # The first worker stalls past its lease; a second one claims and delivers the message.
    later = now + shared_outbox.LEASE + timedelta(seconds=1)
    sent: list[dict[str, object]] = []
    async with recording_client(sent) as client:
        report = await shared_outbox.deliver_due(IDENTITY, directory, today=TODAY, now=later,
                                                 client=client)
    assert report.delivered == 1
    recorded = await shared_store.record_delivery(
        claimed, "pending", error="HTTP 503", next_attempt_at=now, lease_until=now +
        shared_outbox.LEASE, now=now)
    assert recorded is False
    assert [d.state for d in await shared_store.list_deliveries()] == ["delivered"]

    directory.peers[0] = replace(peer, state="suspended")
    await demands.post(caller, new_demand(Visibility.PUBLIC_POOL, TODAY + timedelta(days=5)),
                       today=TODAY)
    async with recording_client(sent) as client:
        quiet = await shared_outbox.deliver_due(IDENTITY, directory, today=TODAY, client=client)
    assert (quiet.queued, quiet.delivered) == (0, 0)
    assert len(sent) == 1
