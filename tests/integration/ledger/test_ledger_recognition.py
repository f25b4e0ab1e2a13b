"""Register once, trusted everywhere: a code registered at exchange A is verified from A's
signed profile, the consortium contract on anvil, and A's log served over HTTP."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from ledger.anchoring import run_anchoring
from ledger.chain import Web3ChainGateway
from ledger.note import NoteSigner
from ledger.profile import sign_profile
from ledger.recognition import (
    RecognitionError,
    Web3ConsortiumReader,
    evidence,
    recognise_code,
    verify_peer_profile,
)
from ledger.sealing import seal
from market.api.exchange import exchange_profile
from market.ledger_wiring import ledger_signer
from market.settings import Settings
from tests.e2e.listings_flow import make_cast, register, resource_data
from tests.integration.ledger.conftest import ORIGIN, Chain
from tests.integration.ledger.running_app import app_client

pytestmark = pytest.mark.chain


@pytest.fixture
def settings_a(db: str, tmp_path: Path, chain: Chain) -> Settings:
    return Settings(database_url=db, data_dir=tmp_path, ledger_origin=ORIGIN,
                    ledger_signing_key=NoteSigner.generate(ORIGIN).to_skey(),
                    chain_rpc_url=chain.node.rpc_url, chain_private_key=chain.exchange_key,
                    ledger_contract_address=chain.contract.address,
                    # The test drives anchoring itself; the background job must stay idle.
                    ledger_anchor_interval_s=86_400.0)


@pytest.fixture
async def client_a(settings_a: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(settings_a) as client:
        yield client


@pytest.fixture
async def reader(chain: Chain) -> AsyncIterator[Web3ConsortiumReader]:
    reader = Web3ConsortiumReader(chain.node.rpc_url, chain.contract.address)
    yield reader
    await reader.close()


async def seal_and_anchor(settings: Settings, chain: Chain) -> int:
    sealed = await seal(ledger_signer(settings), wait=True)
    assert sealed is not None
    gateway = Web3ChainGateway(chain.node.rpc_url, chain.exchange_key, chain.contract.address)
    try:
        # One pass registers queued codes; the anchor may need a second pass, and the app's
        # own anchoring job may hold the lock for a moment.
        for _ in range(50):
            run = await run_anchoring(gateway, confirmations=1)
            assert run.error is None
            if chain.contract.functions.latestAnchor(chain.exchange).call()[0] >= \
                    sealed.tree_size and not run.in_flight and not run.busy:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the anchor was not confirmed")
    finally:
        await gateway.close()
    return int(sealed.tree_size)


async def registered_code(client: httpx.AsyncClient) -> str:
    cast = await make_cast()
    result = await register(client, cast, {"kind": "first", "data": resource_data()})
    return str(result["code"])


async def test_a_code_registered_at_a_is_recognised(client_a, settings_a, chain, reader):
    code = await registered_code(client_a)
    size = await seal_and_anchor(settings_a, chain)

    note = (await client_a.get("/exchange/profile")).text
    profile = await verify_peer_profile(note, reader)
    assert profile.chain_address == chain.exchange
    recognised = await recognise_code(client_a, profile, code, reader)
    assert recognised.code == code
    assert recognised.checkpoint.tree_size == size == recognised.anchored_tree_size
    assert recognised.record.payload["code"] == code
    assert evidence(recognised)["origin"] == ORIGIN

    # More leaves sealed but not anchored: the checkpoint is tied to the anchor by a
    # consistency proof instead.
    await registered_code(client_a)
    newer = await seal(ledger_signer(settings_a), wait=True)
    assert newer is not None
    assert newer.tree_size > size
    again = await recognise_code(client_a, profile, code, reader)
    assert (again.checkpoint.tree_size, again.anchored_tree_size) == (newer.tree_size, size)


async def test_unknown_code_and_wrong_peer_are_refused(client_a, settings_a, chain, reader):
    code = await registered_code(client_a)
    await seal_and_anchor(settings_a, chain)
    profile = await verify_peer_profile((await client_a.get("/exchange/profile")).text, reader)

    with pytest.raises(RecognitionError, match="not in the consortium's on-chain registry"):
        await recognise_code(client_a, profile, "DEMOEX-A-2026-99999999-Z", reader)

    # A profile claiming the code's issuer is another member: the chain says otherwise.
    other = dataclasses.replace(profile, chain_address=chain.peer)
    with pytest.raises(RecognitionError, match=f"registered by {chain.exchange}"):
        await recognise_code(client_a, other, code, reader)


async def test_not_yet_anchored_code_is_refused(client_a, settings_a, chain, reader):
    code = await registered_code(client_a)
    await seal(ledger_signer(settings_a), wait=True)
    profile = await verify_peer_profile((await client_a.get("/exchange/profile")).text, reader)
    # Nothing reached the chain yet, not even the code.
    with pytest.raises(RecognitionError, match="not in the consortium's on-chain registry"):
        await recognise_code(client_a, profile, code, reader)


async def test_forged_profiles_are_refused(client_a, settings_a, chain, reader):
    note = (await client_a.get("/exchange/profile")).text
    with pytest.raises(RecognitionError, match="profile signature"):
        await verify_peer_profile(note.replace(settings_a.base_url, "http://evil.test"), reader)

    # A well-signed profile by an impostor key for A's origin, naming A's chain address: the
    # key is the impostor's own, so only the pin catches it.
    impostor = NoteSigner.generate(ORIGIN)
    genuine = exchange_profile(settings_a)
    forged = dataclasses.replace(genuine, vkey=impostor.verifier.to_vkey())
    with pytest.raises(RecognitionError, match="not the pinned key"):
        await verify_peer_profile(sign_profile(forged, impostor), reader,
                                  expected_vkey=genuine.vkey)

    # An origin the consortium admitted for another account.
    stranger = NoteSigner.generate("stranger.test/ledger")
    claimed = dataclasses.replace(genuine, origin=stranger.name,
                                  vkey=stranger.verifier.to_vkey())
    with pytest.raises(RecognitionError, match=r"admitted .* under 'exchange\.test/ledger'"):
        await verify_peer_profile(sign_profile(claimed, stranger), reader)

    # A chain address that is no member at all.
    outsider = dataclasses.replace(claimed, chain_address="0x" + "11" * 20)
    with pytest.raises(RecognitionError, match="is not a consortium member"):
        await verify_peer_profile(sign_profile(outsider, stranger), reader)
