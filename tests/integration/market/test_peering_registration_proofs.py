"""What a peer's registry says of a code is believed only as far as its log proves it: the
registration data must hash to the digest its `applied` leaf recorded (issue 7 §3)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from ledger.recognition import RecognitionError, Web3ConsortiumReader
from listings.codes import parse_code
from market.peering import directory
from market.peering.recognitions import prove_registration
from market.settings import Settings
from tests.integration.ledger.conftest import Chain, chain, gateway, ledger_anvil  # noqa: F401
from tests.integration.ledger.running_app import app_client
from tests.integration.ledger.test_ledger_recognition import (
    reader,  # noqa: F401
    registered_code,
    seal_and_anchor,
    settings_a,  # noqa: F401
)

pytestmark = pytest.mark.chain

Rewrite = Callable[[dict[str, Any]], None]


class RewritingRegistry(httpx.AsyncBaseTransport):
    """The peer's app, except that its registry answers are rewritten on the way."""

    def __init__(self, inner: httpx.AsyncBaseTransport, rewrite: Rewrite) -> None:
        self.inner = inner
        self.rewrite = rewrite

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if not request.url.path.startswith("/registry/"):
            return response
        document = json.loads(await response.aread())
        self.rewrite(document)
        return httpx.Response(response.status_code, json=document)


@pytest.fixture
async def peer_app(settings_a: Settings) -> AsyncIterator[httpx.AsyncClient]:  # noqa: F811
    async with app_client(settings_a) as client:
        yield client


async def configured_peer(client: httpx.AsyncClient, settings: Settings,
                          reader: Web3ConsortiumReader) -> directory.Peer:  # noqa: F811
    note = (await client.get("/exchange/profile")).text
    return await directory.add_peer(note, reader, fetched_from=settings.base_url)


def via(client: httpx.AsyncClient, rewrite: Rewrite) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=RewritingRegistry(client._transport, rewrite),
                             base_url=client.base_url)


async def test_registry_data_is_checked_against_the_logged_digest(
        peer_app: httpx.AsyncClient, settings_a: Settings, chain: Chain,  # noqa: F811
        reader: Web3ConsortiumReader) -> None:  # noqa: F811
    code = parse_code(await registered_code(peer_app), "code")
    await seal_and_anchor(settings_a, chain)
    peer = await configured_peer(peer_app, settings_a, reader)

    proven = await prove_registration(peer_app, peer, code, reader)
    assert proven.entry.code == str(code)
    assert proven.recognised.record.payload["code"] == str(code)

    def retitle(document: dict[str, Any]) -> None:
        document["current"]["data"]["title"] += "(修订)"

    def other_code(document: dict[str, Any]) -> None:
        document["code"] = document["code"][:-1] + "X"

    def cancelled(document: dict[str, Any]) -> None:
        document["state"] = "cancelled"

    def no_application(document: dict[str, Any]) -> None:
        document["history"] = [event for event in document["history"]
                               if event["step"] != "applied"]

    for rewrite, message in ((retitle, "not the data its log recorded"),
                             (other_code, "answered for"),
                             (cancelled, "is cancelled at"),
                             (no_application, "no single application leaf")):
        async with via(peer_app, rewrite) as tampered:
            with pytest.raises(RecognitionError, match=message):
                await prove_registration(tampered, peer, code, reader)
