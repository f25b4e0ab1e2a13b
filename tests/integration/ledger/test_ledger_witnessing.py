"""Witnessing over HTTP with real PostgreSQL and anvil: this exchange witnesses a configured
peer's log (POST /witness/add-checkpoint), asks the peer's witness to cosign its own log, and
catches a peer that rewrites its history by watching its published checkpoint.

The peer is a log in memory behind an httpx MockTransport speaking the same HTTP resources
(`/ledger/checkpoint`, `/ledger/consistency`, `/witness/add-checkpoint`), so each test can make
it misbehave in a precise way."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from ledger.checkpoint import open_checkpoint
from ledger.cosignature import Cosigner, verified_cosignatures
from ledger.log import append_record
from ledger.note import NoteSigner, NoteVerifier
from ledger.profile import ExchangeProfile, open_profile, sign_profile
from ledger.recognition import Web3ConsortiumReader
from ledger.sealing import seal
from ledger.tables import LedgerLeaf
from ledger.witness import (
    TREE_SIZE_MEDIA_TYPE,
    Accepted,
    AddCheckpointRequest,
    SizeMismatch,
    WitnessedCheckpoint,
    decide,
)
from market import witnessing
from market.accounts.model import Role
from market.ledger_wiring import ledger_signer
from market.peering import directory
from market.peering.refusals import recent_refusals
from market.settings import Settings
from tests.factories import make_account
from tests.integration.ledger.conftest import ORIGIN, Chain
from tests.integration.ledger.running_app import app_client
from tests.unit.ledger.memory_log import MemoryLog, entries

pytestmark = pytest.mark.chain

PEER_ORIGIN = "peer.test/ledger"
PEER_API = "http://peer.test"


class Peer:
    """The peer exchange: its log, its witness, and what its HTTP resources answer."""

    def __init__(self, exchange_vkey: str) -> None:
        self.signer = NoteSigner.generate(PEER_ORIGIN)
        self.witness = Cosigner.generate("peer.test/witness")
        self.log = MemoryLog(self.signer, entries(30))
        self.size = 7
        # A checkpoint older than `size` served from a lagging cache, if set.
        self.cached_size: int | None = None
        self.exchange_verifier = NoteVerifier.from_vkey(exchange_vkey)
        self.witnessed: WitnessedCheckpoint | None = None
        self.requests: list[AddCheckpointRequest] = []

    def profile(self, chain: Chain) -> str:
        return sign_profile(ExchangeProfile(
            name="Peer", origin=PEER_ORIGIN, vkey=self.signer.verifier.to_vkey(),
            api_base_url=PEER_API, chain_address=chain.peer,
            witness_vkey=self.witness.verifier.to_vkey()), self.signer)

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/ledger/checkpoint":
            return httpx.Response(200, text=self.log.note(self.cached_size or self.size))
        if request.url.path == "/ledger/consistency":
            first, second = int(request.url.params["from"]), int(request.url.params["to"])
            if second > self.size:
                return httpx.Response(404)
            proof = self.log.proof(first, second) if first != second else ()
            return httpx.Response(200, json={"proof": [base64.b64encode(element).decode()
                                                       for element in proof]})
        if request.url.path == "/witness/add-checkpoint":
            return self.cosign(AddCheckpointRequest.parse(request.content.decode()))
        return httpx.Response(404)

    def cosign(self, submitted: AddCheckpointRequest) -> httpx.Response:
        self.requests.append(submitted)
        decision = decide(submitted, self.exchange_verifier, self.witnessed)
        if isinstance(decision, SizeMismatch):
            return httpx.Response(409, text=f"{decision.known_size}\n",
                                  headers={"Content-Type": TREE_SIZE_MEDIA_TYPE})
        if not isinstance(decision, Accepted):
            return httpx.Response(decision.status)
        self.witnessed = WitnessedCheckpoint(decision.checkpoint.tree_size,
                                             decision.checkpoint.root_hash, decision.signed_note)
        return httpx.Response(200, text=self.witness.cosign(decision.checkpoint_text,
                                                            1_700_000_000).line)


@pytest.fixture
def settings(db: str, tmp_path: Path) -> Settings:
    return Settings(database_url=db, data_dir=tmp_path, ledger_origin=ORIGIN,
                    ledger_signing_key=NoteSigner.generate(ORIGIN).to_skey())


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(settings) as http_client:
        yield http_client


@pytest.fixture
async def peer(settings: Settings, chain: Chain, client: httpx.AsyncClient) -> Peer:
    peer = Peer(ledger_signer(settings).verifier.to_vkey())
    reader = Web3ConsortiumReader(chain.node.rpc_url, chain.contract.address)
    try:
        await directory.add_peer(peer.profile(chain), reader, fetched_from=PEER_API,
                                 own_origin=ORIGIN)
    finally:
        await reader.close()
    return peer


@pytest.fixture
def peer_client(peer: Peer) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(peer.handle))


async def submit(client: httpx.AsyncClient, old: int, proof: tuple[bytes, ...],
                 note: str) -> httpx.Response:
    body = AddCheckpointRequest(old, proof, note).to_body()
    return await client.post("/witness/add-checkpoint", content=body.encode())


async def test_a_peer_checkpoint_is_cosigned_then_followed_and_a_fork_is_evidence(
        client, peer):
    profile = open_profile((await client.get("/exchange/profile")).text)
    witness = profile.witness
    assert witness is not None
    assert witness.public_key_bytes != profile.verifier.public_key_bytes

    first = await submit(client, 0, (), peer.log.note(7))
    assert first.status_code == 200, first.text
    cosigned = peer.log.note(7) + first.text
    _, found = verified_cosignatures(cosigned, [witness])
    assert [cosignature.name for cosignature in found] == [witness.name]

    stale = await submit(client, 0, (), peer.log.note(12))
    assert stale.status_code == 409
    assert stale.headers["content-type"].startswith(TREE_SIZE_MEDIA_TYPE)
    assert stale.text == "7\n"

    grown = await submit(client, 7, peer.log.proof(7, 12), peer.log.note(12))
    assert grown.status_code == 200

    forked = MemoryLog(peer.signer, entries(30, tag=" rewritten"))
    refused = await submit(client, 12, forked.proof(12, 20), forked.note(20))
    assert refused.status_code == 422
    assert refused.json()["type"].endswith("/validation")
    same_size = await submit(client, 12, (), forked.note(12))
    assert same_size.status_code == 409
    assert same_size.headers["content-type"].startswith("application/problem+json")

    staff = await make_account(Role.STAFF)
    alerts = (await client.get("/witness/alerts", headers=staff.headers)).json()
    assert [alert["source"] for alert in alerts] == ["submission", "submission"]
    assert alerts[1]["evidence"]["known_checkpoint"] == peer.log.note(12)
    assert alerts[1]["evidence"]["presented_checkpoint"] == forked.note(20)
    assert len(alerts[1]["evidence"]["consistency_proof"]) == len(forked.proof(12, 20))
    refusals = await recent_refusals(limit=10)
    assert {refusal.peer_origin for refusal in refusals} == {PEER_ORIGIN}
    # The witness kept its view: the honest history still extends.
    assert (await submit(client, 12, peer.log.proof(12, 20), peer.log.note(20))).status_code \
        == 200
    buyer = await make_account(Role.BUYER)
    assert (await client.get("/witness/alerts", headers=buyer.headers)).status_code == 403


async def test_unknown_forged_suspended_and_malformed_submissions_are_refused(client, peer):
    stranger = MemoryLog(NoteSigner.generate("stranger.test/ledger"), entries(4))
    assert (await submit(client, 0, (), stranger.note(4))).status_code == 404
    impostor = NoteSigner.generate(PEER_ORIGIN)
    forged = await submit(client, 0, (), peer.log.note(4, impostor))
    assert forged.status_code == 403
    assert (await submit(client, 9, (), peer.log.note(4))).status_code == 400
    malformed = await client.post("/witness/add-checkpoint", content=b"old 01\n\nx\n")
    assert malformed.status_code == 400
    assert malformed.json()["field"] == "body"
    configured = await directory.peer_by_origin(PEER_ORIGIN)
    assert configured is not None
    await directory.set_state(configured.id, "suspended", actor="staff")
    assert (await submit(client, 0, (), peer.log.note(4))).status_code == 404


async def append_and_seal(settings: Settings, count: int) -> int:
    async with LedgerLeaf._meta.db.transaction():
        for index in range(count):
            await append_record("test.witnessed", actor="test", subject=str(index),
                                payload={"n": index})
    sealed = await seal(ledger_signer(settings), wait=True)
    assert sealed is not None
    return sealed.tree_size


async def test_this_log_is_cosigned_by_the_peer_and_served_with_the_cosignature(
        client, settings, peer, peer_client):
    size = await append_and_seal(settings, 3)
    assert await witnessing.submit_checkpoint_to_witnesses(peer_client) == 1
    # Nothing new: the peer's witness is not asked again.
    assert await witnessing.submit_checkpoint_to_witnesses(peer_client) == 0
    assert len(peer.requests) == 1
    served = (await client.get("/ledger/checkpoint")).text
    _, found = verified_cosignatures(served, [peer.witness.verifier])
    assert [cosignature.name for cosignature in found] == ["peer.test/witness"]

    # The log grows: the submission proves the new size from the one cosigned.
    newer = await append_and_seal(settings, 5)
    assert await witnessing.submit_checkpoint_to_witnesses(peer_client) == 1
    assert (peer.requests[-1].old_size, len(peer.requests[-1].proof) > 0) == (size, True)
    served = (await client.get("/ledger/checkpoint")).text
    assert f"\n{newer}\n" in served
    assert len(verified_cosignatures(served, [peer.witness.verifier])[1]) == 1


async def test_a_witness_that_knows_a_larger_size_answers_409_and_the_log_proves_from_it(
        client, settings, peer, peer_client):
    await append_and_seal(settings, 2)
    first_note = (await client.get("/ledger/checkpoint")).text
    first = open_checkpoint(first_note, ledger_signer(settings).verifier)
    # The peer's witness saw this size by itself (as by polling) and never cosigned it for us.
    peer.witnessed = WitnessedCheckpoint(first.tree_size, first.root_hash, first_note)
    await append_and_seal(settings, 4)
    assert await witnessing.submit_checkpoint_to_witnesses(peer_client) == 1
    assert [request.old_size for request in peer.requests] == [0, first.tree_size]


async def test_watching_follows_a_growing_peer_and_catches_a_rewrite(client, peer, peer_client):
    assert await witnessing.watch_peer_checkpoints(peer_client) == 0
    peer.size = 15
    assert await witnessing.watch_peer_checkpoints(peer_client) == 0
    # An older view the peer can prove is a prefix is only stale.
    peer.cached_size = 9
    assert await witnessing.watch_peer_checkpoints(peer_client) == 0
    peer.cached_size = None

    honest_note = peer.log.note(15)
    peer.log = MemoryLog(peer.signer, entries(30, tag=" rewritten"))
    peer.size = 20
    assert await witnessing.watch_peer_checkpoints(peer_client) == 1
    staff = await make_account(Role.STAFF)
    alerts = (await client.get("/witness/alerts", headers=staff.headers)).json()
    assert len(alerts) == 1
    assert alerts[0]["source"] == "poll"
    assert alerts[0]["evidence"]["known_checkpoint"] == honest_note
    assert alerts[0]["evidence"]["presented_checkpoint"] == peer.log.note(20)
    refusal = (await recent_refusals(limit=1))[0]
    assert refusal.peer_origin == PEER_ORIGIN
    assert refusal.evidence["witness_alert_id"] == alerts[0]["id"]

    # Rolled back to a rewritten prefix it cannot prove: caught too.
    peer.size = 10
    assert await witnessing.watch_peer_checkpoints(peer_client) == 1
