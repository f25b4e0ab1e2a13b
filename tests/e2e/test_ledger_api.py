"""The public log over HTTP (C2SP tlog-tiles + JSON proofs), verified from its endpoints
alone, and the staff reconciliation API."""

from __future__ import annotations

import base64

import asyncpg
import pytest

from ledger.checkpoint import open_checkpoint
from ledger.hashing import leaf_hash
from ledger.log import append_record
from ledger.note import NoteSigner, NoteVerifier
from ledger.proofs import verify_consistency, verify_inclusion
from ledger.sealing import seal
from ledger.tiles import decode_entry_bundle, decode_hash_tile
from ledger.verify import VerificationError, verify_log
from market.accounts.model import Role
from market.database import current_engine
from market.ledger_wiring import ledger_signer
from tests.factories import make_account


async def append_and_seal(settings, count: int, start: int = 0) -> None:
    async with current_engine().transaction():
        for number in range(start, start + count):
            await append_record("test.event", actor="user:1", subject=f"thing:{number}",
                                payload={"n": number, "名称": "气象数据"})
    # The app's own sealer runs meanwhile; waiting for its lock makes the seal certain.
    assert await seal(ledger_signer(settings), wait=True) is not None


async def test_checkpoint_vkey_tiles_and_bundles_follow_tlog_tiles(client, settings):
    await append_and_seal(settings, 300)

    vkey = await client.get("/ledger/vkey")
    checkpoint = await client.get("/ledger/checkpoint")
    assert checkpoint.status_code == 200
    assert checkpoint.headers["content-type"] == "text/plain; charset=utf-8"
    assert checkpoint.headers["cache-control"] == "no-cache"
    opened = open_checkpoint(checkpoint.text, NoteVerifier.from_vkey(vkey.text.strip()))
    assert opened.tree_size == 300
    assert opened.origin == f"{settings.host}:{settings.port}/ledger"

    full = await client.get("/ledger/tile/0/000")
    assert full.status_code == 200
    assert full.headers["content-type"] == "application/octet-stream"
    assert "immutable" in full.headers["cache-control"]
    assert len(decode_hash_tile(full.content, 256)) == 256
    bundle = await client.get("/ledger/tile/entries/001.p/44")
    entries = decode_entry_bundle(bundle.content, 44)
    assert decode_hash_tile((await client.get("/ledger/tile/0/001.p/44")).content, 44) == [
        leaf_hash(entry) for entry in entries]
    assert (await client.get("/ledger/tile/1/000.p/1")).status_code == 200

    for missing in ("/ledger/tile/0/001.p/45", "/ledger/tile/0/002", "/ledger/tile/0/1",
                    "/ledger/tile/entries/000.p/0", "/ledger/tile/x/000"):
        response = await client.get(missing)
        assert response.status_code == 404, missing
        assert response.headers["content-type"].startswith("application/problem+json")


async def test_entry_and_consistency_proofs_verify(client, settings):
    await append_and_seal(settings, 5)
    first_root = base64.b64decode((await client.get("/ledger/entries/0")).json()["root_hash"])
    await append_and_seal(settings, 20, 5)

    proved = (await client.get("/ledger/entries/3")).json()
    assert proved["record"]["payload"] == {"n": 3, "名称": "气象数据"}
    entry = base64.b64decode(proved["entry"])
    verify_inclusion(3, proved["tree_size"], leaf_hash(entry),
                     [base64.b64decode(item) for item in proved["inclusion_proof"]],
                     base64.b64decode(proved["root_hash"]))

    consistency = (await client.get("/ledger/consistency", params={"from": 5})).json()
    assert (consistency["from"], consistency["to"]) == (5, 25)
    verify_consistency(5, 25, [base64.b64decode(item) for item in consistency["proof"]],
                       first_root, base64.b64decode(proved["root_hash"]))

    assert (await client.get("/ledger/entries/25")).status_code == 404
    bad = await client.get("/ledger/consistency", params={"from": 0})
    assert bad.status_code == 422
    assert bad.json()["field"] == "from"
    assert (await client.get("/ledger/consistency", params={"from": 9, "to": 8})).status_code \
        == 422
    assert (await client.get("/ledger/consistency", params={"from": 1, "to": 26})).status_code \
        == 404


async def test_the_log_verifies_from_its_public_endpoints(client, settings, db):
    await append_and_seal(settings, 10)
    first = await verify_log(client, "/ledger")
    assert (first.tree_size, first.tiles_checked) == (10, 1)
    await append_and_seal(settings, 600, 10)

    second = await verify_log(client, "/ledger", vkey=first.vkey,
                              previous_checkpoint=first.checkpoint_note)
    assert second.tree_size == 610
    assert second.consistent_with_previous == 10

    connection = await asyncpg.connect(db)
    try:
        await connection.execute("SET session_replication_role = replica")
        await connection.execute(
            "UPDATE ledger_leaves SET entry = convert_to(replace(convert_from(entry, 'UTF8'), "
            "'\"n\":4', '\"n\":5'), 'UTF8') WHERE leaf_index = 4")
    finally:
        await connection.close()
    with pytest.raises(VerificationError, match="root"):
        await verify_log(client, "/ledger", vkey=first.vkey)


async def test_verification_refuses_another_key(client, settings):
    await append_and_seal(settings, 1)
    stranger = NoteSigner.generate(f"{settings.host}:{settings.port}/ledger").verifier.to_vkey()
    with pytest.raises(VerificationError, match="signature"):
        await verify_log(client, "/ledger", vkey=stranger)


async def test_reconciliation_is_for_staff_and_recorded(client, settings):
    await append_and_seal(settings, 3)
    staff = await make_account(Role.STAFF)
    buyer = await make_account(Role.BUYER)

    assert (await client.post("/ledger/reconciliations", headers=buyer.headers)).status_code \
        == 403
    assert (await client.get("/ledger/alerts")).status_code == 401
    created = await client.post("/ledger/reconciliations", headers=staff.headers)
    assert created.status_code == 201
    body = created.json()
    assert (body["discrepancy_count"], body["leaves_checked"], body["trigger"]) == (0, 3, "staff")
    listed = await client.get("/ledger/reconciliations", headers=staff.headers)
    assert body["id"] in [item["id"] for item in listed.json()]
    shown = await client.get(f"/ledger/reconciliations/{body['id']}", headers=staff.headers)
    assert shown.json() == body
    assert (await client.get("/ledger/reconciliations/999999",
                             headers=staff.headers)).status_code == 404
