"""Proof bundles from a real log anchored on anvil: GET /ledger/bundle/{index} verifies offline
and on chain, and a bundle altered in any part fails the check that covers that part."""

from __future__ import annotations

import argparse
import asyncio
import base64
import copy
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from ledger.anchoring import run_anchoring
from ledger.bundle_verify import verify_bundle, verify_on_chain
from ledger.bundles import Web3AnchorReceipts
from ledger.chain import Web3ChainGateway
from ledger.checkpoint import Checkpoint
from ledger.cosignature import Cosigner
from ledger.cosignature_store import store_cosignatures
from ledger.log import append_record
from ledger.note import NoteSigner
from ledger.recognition import Web3ConsortiumReader
from ledger.sealing import seal
from ledger.tables import LedgerLeaf
from market.ledger_cli import verify_bundle_command
from market.ledger_wiring import ledger_signer
from market.settings import Settings
from tests.integration.ledger.conftest import ORIGIN, Chain
from tests.integration.ledger.running_app import app_client

pytestmark = pytest.mark.chain

WITNESS = Cosigner.generate("peer.test/witness")


@pytest.fixture
def settings(db: str, tmp_path: Path, chain: Chain) -> Settings:
    return Settings(database_url=db, data_dir=tmp_path, ledger_origin=ORIGIN,
                    ledger_signing_key=NoteSigner.generate(ORIGIN).to_skey(),
                    chain_rpc_url=chain.node.rpc_url, chain_private_key=chain.exchange_key,
                    ledger_contract_address=chain.contract.address,
                    # The test drives anchoring itself; the background job must stay idle.
                    ledger_anchor_interval_s=86_400.0)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(settings) as http_client:
        yield http_client


async def append_and_seal(settings: Settings, count: int) -> int:
    async with LedgerLeaf._meta.db.transaction():
        for index in range(count):
            await append_record("test.trade", actor="test", subject=f"trade-{index}",
                                payload={"trade": index, "code": "DEMOEX-0001"})
    sealed = await seal(ledger_signer(settings), wait=True)
    assert sealed is not None
    return sealed.tree_size


async def anchor(chain: Chain, size: int) -> None:
    """Anchor up to `size`; the app's own anchoring job may hold the lock for a moment or take
    the first anchor itself, so this waits for the chain, not for a run of its own."""
    gateway = Web3ChainGateway(chain.node.rpc_url, chain.exchange_key, chain.contract.address)
    try:
        for _ in range(50):
            run = await run_anchoring(gateway, confirmations=1)
            assert run.error is None
            anchored = chain.contract.functions.latestAnchor(chain.exchange).call()[0]
            if anchored >= size and not run.in_flight and not run.busy:
                return
            await asyncio.sleep(0.1)
    finally:
        await gateway.close()
    raise AssertionError("the anchor was not confirmed")


@pytest.fixture
async def bundle(client: httpx.AsyncClient, settings: Settings, chain: Chain) -> dict[str, Any]:
    anchored = await append_and_seal(settings, 6)
    await anchor(chain, anchored)
    # Sealed past the anchor and cosigned: the bundle ties the newer checkpoint to the anchor.
    size = await append_and_seal(settings, 5)
    note = (await client.get("/ledger/checkpoint")).text
    text = note[: note.rindex("\n\n") + 1]
    assert Checkpoint.parse(text).tree_size == size
    await store_cosignatures(size, [WITNESS.cosign(text, 1_700_000_000)])
    response = await client.get("/ledger/bundle/2")
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    assert (document["anchor"]["tree_size"], anchored) == (anchored, 6)
    assert document["anchor_consistency_proof"]
    return document


def trusted(settings: Settings) -> dict[str, Any]:
    return {"trusted_vkey": ledger_signer(settings).verifier.to_vkey(),
            "trusted_witnesses": [WITNESS.verifier]}


async def test_a_bundle_verifies_offline_and_on_chain(bundle, settings, chain):
    checks = verify_bundle(bundle, **trusted(settings))
    assert [check.name for check in checks] == [

        "bundle format", "exchange profile", "checkpoint signature", "cosignatures", "entry",
        "inclusion proof", "anchor transaction", "anchor event", "anchor consistency"]
    assert all(check.passed for check in checks), checks
    reader = Web3ConsortiumReader(chain.node.rpc_url, chain.contract.address)
    receipts = Web3AnchorReceipts(chain.node.rpc_url)
    try:
        on_chain = await verify_on_chain(bundle, reader, receipts)
    finally:
        await reader.close()
        await receipts.close()
    assert on_chain.passed, on_chain.detail


def _flip_base64(value: str) -> str:
    data = bytearray(base64.b64decode(value))
    data[-1] ^= 1
    return base64.b64encode(bytes(data)).decode()


def _flip_hex(value: str) -> str:
    return value[:-1] + ("0" if value[-1] != "0" else "1")


def _set(path: tuple[str, ...], change: Callable[[Any], Any]) -> Callable[[dict[str, Any]], None]:
    def apply(document: dict[str, Any]) -> None:
        target = document
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = change(target[path[-1]])
    return apply


def _forge_cosignature(note: str) -> str:
    head, line = note.rstrip("\n").rsplit("\n", 1)
    name, signature = line.rsplit(" ", 1)
    return f"{head}\n{name} {_flip_base64(signature)}\n"


TAMPERINGS: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "format": (_set(("format",), lambda _: "other/v1"), "bundle format"),
    "profile": (_set(("profile",), lambda note: note.replace("\nname ", "\nname X")),
                "exchange profile"),
    "checkpoint": (_set(("checkpoint",), lambda note: note.replace(
        f"{ORIGIN}\n11\n", f"{ORIGIN}\n12\n")), "checkpoint signature"),
    "cosignature": (_set(("checkpoint",), _forge_cosignature), "cosignatures"),
    "entry": (_set(("entry",), lambda entry: base64.b64encode(
        base64.b64decode(entry).replace(b'"trade":2', b'"trade":7')).decode()),
              "inclusion proof"),
    "leaf index": (_set(("leaf_index",), lambda index: index + 1), "entry"),
    "inclusion proof": (_set(("inclusion_proof",), lambda proof: [_flip_base64(proof[0]),
                                                                  *proof[1:]]),
                        "inclusion proof"),
    "raw transaction": (_set(("anchor", "raw_transaction"), _flip_hex), "anchor transaction"),
    "tx hash": (_set(("anchor", "tx_hash"), _flip_hex), "anchor transaction"),
    "anchored size": (_set(("anchor", "tree_size"), lambda size: size - 1),
                      "anchor transaction"),
    "anchored root": (_set(("anchor", "root_hash"), _flip_base64), "anchor transaction"),
    "contract": (_set(("anchor", "contract"), lambda _: "0x" + "11" * 20),
                 "anchor transaction"),
    "chain id": (_set(("anchor", "chain_id"), lambda chain_id: chain_id + 1),
                 "anchor transaction"),
    "event data": (_set(("anchor", "log", "data"), _flip_hex), "anchor event"),
    "event sender": (_set(("anchor", "log", "topics"), lambda topics: [
        topics[0], _flip_hex(topics[1])]), "anchor event"),
    "event block": (_set(("anchor", "log", "block_number"), lambda number: number + 1),
                    "anchor event"),
    "anchor consistency proof": (_set(("anchor_consistency_proof",), lambda proof: [
        _flip_base64(proof[0]), *proof[1:]]), "anchor consistency"),
}


async def test_a_bundle_altered_in_any_part_fails_that_check(bundle, settings):
    for part, (tamper, failing_check) in TAMPERINGS.items():
        altered = copy.deepcopy(bundle)
        tamper(altered)
        checks = verify_bundle(altered, **trusted(settings))
        assert checks[-1].passed is False, part
        assert checks[-1].name == failing_check, (part, checks[-1])
        assert all(check.passed for check in checks[:-1]), part


async def test_untrusted_keys_fail_the_check_that_uses_them(bundle, settings):
    other = NoteSigner.generate(ORIGIN).verifier.to_vkey()
    checks = verify_bundle(bundle, trusted_vkey=other)
    assert (checks[-1].name, checks[-1].passed) == ("exchange profile", False)
    absent = Cosigner.generate("absent.test/witness").verifier
    checks = verify_bundle(bundle, trusted_witnesses=[absent])
    assert (checks[-1].name, checks[-1].passed) == ("cosignatures", False)
    assert "absent.test/witness" in checks[-1].detail


async def test_the_command_prints_each_check_and_names_the_failed_one(
        bundle, settings, chain, tmp_path, capsys):
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle), encoding="utf-8")
    arguments = argparse.Namespace(
        file=path, trusted_vkey=ledger_signer(settings).verifier.to_vkey(),
        trusted_witness=[WITNESS.verifier.to_vkey()], rpc=chain.node.rpc_url)
    assert await asyncio.to_thread(verify_bundle_command, settings, arguments) == 0
    printed = capsys.readouterr().out
    assert "ok      anchor on chain" in printed
    assert printed.count("\nok") + printed.startswith("ok") == 10

    altered = copy.deepcopy(bundle)
    TAMPERINGS["event data"][0](altered)
    path.write_text(json.dumps(altered), encoding="utf-8")
    assert await asyncio.to_thread(verify_bundle_command, settings, arguments) == 1
    captured = capsys.readouterr()
    assert "FAILED  anchor event" in captured.out
    assert "FAILED: anchor event" in captured.err


async def test_a_leaf_not_yet_anchored_has_no_bundle(client, settings):
    await append_and_seal(settings, 2)
    response = await client.get("/ledger/bundle/0")
    assert response.status_code == 404
    assert "anchor" in response.json()["detail"]
    assert (await client.get("/ledger/bundle/99")).status_code == 404
