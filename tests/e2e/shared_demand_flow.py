"""Steps of demand shared across exchanges, for end-to-end tests: a peer exchange as this one
sees it (a directory row and a chain key that signs its messages), its signed messages, and the
outbox run with an HTTP client that stands for the peers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import httpx
import msgspec
from eth_account import Account

from market.peering import directory
from market.peering.tables import PeerRow
from market.trading import shared_outbox
from market.trading.shared_identity import ExchangeIdentity
from market.trading.shared_messages import (
    PeerMessage,
    SharedDemand,
    SharedOffer,
    SigningDomain,
    UnitBudget,
    decode,
    envelope,
    recover_signer,
    sign,
)
from tests.e2e.listings_flow import today

CHAIN_ID = 31337
LEDGER_CONTRACT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
DOMAIN = SigningDomain(CHAIN_ID, LEDGER_CONTRACT)
# anvil's well-known development keys 3 and 4: the exchange under test uses key 1.
EXCHANGE_KEY = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a"
PEER_KEY = "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6"
PEER_ORIGIN = "peer.test/ledger"
PEER_NAME = "对端数据交易所"
PEER_URL = "http://peer.test"


async def admit_peer(*, origin: str = PEER_ORIGIN, key: str = PEER_KEY,
                     state: str = "active") -> str:
    """A peer in this exchange's directory, as if configured from its profile; its address."""
    address = str(Account.from_key(key).address)
    await PeerRow.raw(
        "INSERT INTO peering_peers (origin, name, vkey, chain_address, api_base_url, state, "
        "profile_note, configured_by, leaf_index, configured_at) "
        "VALUES ({}, {}, {}, {}, {}, {}, {}, 'staff:test', 0, {})",
        origin, PEER_NAME, f"{origin}+00000000+AAAA", address, PEER_URL, state,
        "exchange-profile/v1", datetime.now(UTC)).run()
    return address


def demand_message(recipient: str, **overrides: Any) -> SharedDemand:
    message = SharedDemand(
        origin=PEER_ORIGIN, recipient=recipient, demand_id=str(uuid4()), version=1,
        state="open", close_reason="", title="采购城市逐小时气象数据",
        description="物流企业安排车辆调度,需要城市逐小时降水、气温和风速数据接口。",
        domains=["meteorology"], purpose="industry", has_budget_per_unit=False,
        budget_minor_per_unit=0, unit_budgets=[UnitBudget(unit="per_call", amount_minor=100)],
        currency="CNY", delivery_forms=["api", "file"], grade_clearance="general",
        deadline=(today() + timedelta(days=30)).isoformat(),
        issued_at=int(datetime.now(UTC).timestamp()))
    return msgspec.structs.replace(message, **overrides)


def offer_message(recipient: str, demand_id: str, **overrides: Any) -> SharedOffer:
    message = SharedOffer(
        origin=PEER_ORIGIN, recipient=recipient, demand_id=demand_id, demand_version=1,
        offer_id=str(uuid4()), exchange_name=PEER_NAME, product_id=str(uuid4()),
        product_title="城市逐小时气象数据接口", operator_id=str(uuid4()),
        operator_name="对端气象数据运营公司", registration_code="PEERX-2026-000001",
        delivery_form="api", purpose="industry", unit="per_call", price_minor=80,
        currency="CNY", message="可提供全国主要城市逐小时数据。",
        issued_at=int(datetime.now(UTC).timestamp()))
    return msgspec.structs.replace(message, **overrides)


def signed_body(message: PeerMessage, key: str = PEER_KEY) -> dict[str, Any]:
    return envelope(message, sign(message, DOMAIN, key))


class PeerInbox:
    """Stands for the peers over HTTP: keeps every message POSTed to them, checks each was
    signed by ``signer``, and answers with ``status``."""

    def __init__(self, signer: str, status: Callable[[httpx.Request], int] = lambda _: 200
                 ) -> None:
        self.signer = signer
        self.status = status
        self.received: list[tuple[str, PeerMessage]] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        body = msgspec.json.decode(request.content)
        kinds = {path: kind for kind, path in shared_outbox.PATHS.items()}
        kind = kinds[request.url.path]
        message = decode(kind, body["message"])
        assert recover_signer(message, DOMAIN, body["signature"]) == self.signer
        self.received.append((request.url.path, message))
        return httpx.Response(self.status(request), json={"detail": "as told"})

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self.handle))

    def of(self, kind: type[Any]) -> list[Any]:
        return [message for _path, message in self.received if isinstance(message, kind)]


async def run_outbox(identity: ExchangeIdentity, inbox: PeerInbox, *,
                     at: datetime | None = None) -> shared_outbox.DeliveryReport:
    async with inbox.client() as client:
        return await shared_outbox.deliver_due(identity, directory, today=today(), now=at,
                                               client=client)
