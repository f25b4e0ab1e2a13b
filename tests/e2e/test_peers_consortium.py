"""Mutual recognition across real exchange processes (issue 7 §1–4, §8–9).

Exchanges A and B are `market serve` processes with separate databases on one anvil node and
one consortium contract, each configuring the other from its signed profile. A public demand
posted at B is answered by an operator of A and the offer accepted by B's buyer; an operator
lists at B a product registered and listed at A, verified against A's log, checkpoint and
anchor; a buyer orders it at B; when A's regulator revokes the operator's authorization, B's
watch delists it with the reason; forged profiles and bad codes are refused and kept; a third
exchange C that the consortium never admitted is refused as a peer and its shared demand kept
as a refusal.
"""

from __future__ import annotations

import base64
import http.server
import json
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from ledger.note import NoteSigner
from ledger.profile import ExchangeProfile, sign_profile
from listings.codes import UnifiedCode
from listings.domains import SubjectKind
from market.embedded.anvil import AnvilNode, find_anvil_binary
from tests.e2e.listings_flow import today
from tests.e2e.peers_harness import Consortium, Exchange, consortium_of, eventually
from tests.e2e.trading_flow import demand_body

pytestmark = pytest.mark.chain

PROJECT_ROOT = Path(__file__).resolve().parents[2]
STAFF, REGULATOR = "staff@exchange.example", "regulator@bureau.example"
OPERATOR, BUYER = "ops@weather-operator.example", "buyer@logistics.example"


@pytest.fixture(scope="module")
def consortium(database_url: str, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[Consortium]:
    with AnvilNode(find_anvil_binary(PROJECT_ROOT)) as anvil:
        yield from consortium_of(anvil, database_url, tmp_path_factory.mktemp("consortium"))


@pytest.fixture(scope="module")
def exchanges(consortium: Consortium) -> tuple[Exchange, Exchange]:
    a = consortium.create("A", account=1)
    b = consortium.create("B", account=2)
    a.start()
    b.start()
    return a, b


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, (response.status_code, response.text)
    return response.json()


async def listed_products_at(exchange: Exchange) -> list[dict[str, Any]]:
    """The demo weather operator's listed products at `exchange` that have their code."""
    async with exchange.client() as client:
        products = ok(await client.get("/products", headers=exchange.headers(OPERATOR)))
    listed = [product for product in products
              if product["state"]["value"] == "listed" and product["registration_code"]]
    assert listed, products
    return listed


async def listed_product_at(exchange: Exchange) -> dict[str, Any]:
    return (await listed_products_at(exchange))[0]


async def cancel_registration_at(exchange: Exchange, code: str) -> None:
    """The operator files a cancellation (注销登记); staff take it through notice to its end."""
    async with exchange.client() as client:
        applied = ok(await client.post("/registrations", json={
            "kind": "cancellation", "target_code": code, "statement": "产品停止提供"},
            headers=exchange.headers(OPERATOR)), 201)
        base = f"/registrations/{applied['id']}"
        ok(await client.post(f"{base}/accept", headers=exchange.headers(STAFF)))
        ok(await client.post(f"{base}/start-review", headers=exchange.headers(STAFF)))
        notice = ok(await client.post(f"{base}/open-notice", headers=exchange.headers(STAFF)))
        # The notice days pass, as in real life.
        await exchange.sql("UPDATE listings_registrations SET notice_starts_on = "
                           "notice_starts_on - $1::integer WHERE id = $2",
                           notice["notice"]["days"], uuid.UUID(applied["id"]))
        ok(await client.post(f"{base}/assign-code", headers=exchange.headers(STAFF)))


async def configure_peer(at: Exchange, peer: Exchange) -> dict[str, Any]:
    async with at.client() as client:
        return ok(await client.post("/peers", json={"api_base_url": peer.base_url},
                                    headers=at.headers(STAFF)), 201)


async def verified_at(exchange: Exchange, code: str) -> dict[str, Any]:
    """The code's verification at `exchange`, once its issuer has anchored it on chain."""
    async def check() -> dict[str, Any] | None:
        async with exchange.client() as client:
            response = await client.get(f"/peers/codes/{code}", headers=exchange.headers(BUYER))
        return response.json() if response.status_code == 200 else None

    result: dict[str, Any] = await eventually(check, timeout_s=90.0)
    return result


def industry_prices(product: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"purpose": price["purpose"]["value"], "unit": price["unit"]["value"],
             "price_minor": price["price_minor"]} for price in product["prices"]]


async def refusal_kinds(exchange: Exchange) -> list[str]:
    async with exchange.client() as client:
        refusals = ok(await client.get("/peers/refusals", headers=exchange.headers(STAFF)))
    return [refusal["kind"] for refusal in refusals]


class ForgedProfileServer:
    """A web server that serves whatever profile note the test sets."""

    def __init__(self) -> None:
        served = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = served.note.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                pass

        self.note = ""
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


async def test_demand_posted_at_b_is_answered_by_an_operator_of_a(
        exchanges: tuple[Exchange, Exchange]) -> None:
    a, b = exchanges
    await configure_peer(b, a)
    await configure_peer(a, b)
    product_at_a = await listed_product_at(a)
    price = next(item for item in product_at_a["prices"]
                 if item["purpose"]["value"] == "industry")
    unit = price["unit"]["value"]
    async with b.client() as client:
        demand = ok(await client.post("/demands", json=demand_body(
            domains=[product_at_a["domain"]["value"]],
            unit_budgets_minor={unit: price["price_minor"] * 2},
            delivery_forms=[product_at_a["delivery_form"]["value"]]),
            headers=b.headers(BUYER)), 201)

    async def shared_at_a() -> dict[str, Any] | None:
        async with a.client() as client:
            found = ok(await client.get("/peer-demands", headers=a.headers(OPERATOR)))
        return next((item for item in found if item["demand"]["title"] == demand["title"]),
                    None)

    item = await eventually(shared_at_a)
    shared = item["demand"]
    assert shared["origin"] == b.origin
    # A matched it against its own catalog: the operator's product is among the matches.
    assert product_at_a["id"] in item["matching_product_ids"]
    async with a.client() as client:
        offer = ok(await client.post(f"/peer-demands/{shared['id']}/offers", json={
            "product_id": product_at_a["id"], "unit": unit, "price_minor": price["price_minor"],
            "message": "可按需提供接口。"}, headers=a.headers(OPERATOR)), 201)

    async def offered_at_b() -> list[dict[str, Any]] | None:
        async with b.client() as client:
            offers = ok(await client.get(f"/demands/{demand['id']}/offers",
                                         headers=b.headers(BUYER)))
        return [item for item in offers if item["exchange"]] or None

    [foreign] = await eventually(offered_at_b)
    assert foreign["exchange"]["origin"] == a.origin
    assert foreign["price"]["price_minor"] == price["price_minor"]
    async with b.client() as client:
        accepted = ok(await client.post(
            f"/demands/{demand['id']}/foreign-offers/{foreign['id']}/accept",
            headers=b.headers(BUYER)))
    assert accepted["state"]["value"] == "accepted"

    async def accepted_at_a() -> bool:
        async with a.client() as client:
            offers = ok(await client.get(f"/peer-demands/{shared['id']}/offers",
                                         headers=a.headers(OPERATOR)))
        return any(item["id"] == offer["id"] and item["state"]["value"] == "accepted"
                   for item in offers)

    assert await eventually(accepted_at_a)


async def test_list_at_a_recognised_and_sold_at_b_then_delisted_when_a_revokes(
        consortium: Consortium, exchanges: tuple[Exchange, Exchange]) -> None:
    a, b = exchanges
    members = consortium.consortium("members")
    assert f"{a.chain_address} active {a.origin}" in members
    assert f"{b.chain_address} active {b.origin}" in members
    peer = await configure_peer(b, a)
    assert (peer["origin"], peer["chain_address"], peer["state"]) == (
        a.origin, a.chain_address, "active")
    await configure_peer(a, b)

    product_at_a = await listed_product_at(a)
    code = product_at_a["registration_code"]
    assert code.startswith("AEX-")
    verified = await verified_at(b, code)
    assert (verified["exchange_origin"], verified["state"], verified["recognised_here"]) == (
        a.origin, "registered", False)
    assert verified["anchored_tree_size"] > verified["leaf_index"]

    async with b.client() as client:
        # Only an operator may list, and only the one that lists it at A.
        refused = await client.post("/recognitions", json={
            "code": code, "prices": industry_prices(product_at_a)}, headers=b.headers(BUYER))
        assert refused.status_code == 403
        listed = ok(await client.post("/recognitions", json={
            "code": code, "prices": industry_prices(product_at_a)},
            headers=b.headers(OPERATOR)), 201)
        product_at_b = listed["product"]
        assert product_at_b["state"]["value"] == "listed"
        assert product_at_b["recognised_from"] == a.origin
        assert product_at_b["registration_code"] == code
        assert product_at_b["title"] == product_at_a["title"]
        assert listed["recognition"]["state"] == "recognised"

        again = await client.post("/recognitions", json={
            "code": code, "prices": industry_prices(product_at_a)}, headers=b.headers(OPERATOR))
        assert again.status_code == 409
        assert again.json()["field"] == "code"

        # The recognition is a leaf of B's own ledger, with A's evidence.
        leaves = await b.sql("SELECT entry FROM ledger_leaves WHERE kind = "
                             "'peering.code_recognised'")
        assert len(leaves) == 1
        assert code.encode() in bytes(leaves[0]["entry"])

        # Sold at B: B's regulator approves its own cap for it, and B's buyer orders it.
        price = next(item for item in product_at_a["prices"]
                     if item["purpose"]["value"] == "industry")
        ok(await client.post("/caps/fee-caps", json={
            "product_id": product_at_b["id"], "purpose": "industry",
            "unit": price["unit"]["value"], "cap_minor": price["price_minor"],
            "effective_from": today().isoformat(), "approval_reference": "B价〔2026〕1号"},
            headers=b.headers(REGULATOR)), 201)
        order = ok(await client.post("/orders", json={
            "product_id": product_at_b["id"], "purpose": "industry",
            "unit": price["unit"]["value"], "quantity": 1, "terms_accepted": True,
            "term": {"start": today().isoformat(),
                     "end": (today() + timedelta(days=30)).isoformat()}},
            headers={**b.headers(BUYER), "Idempotency-Key": str(uuid.uuid4())}), 201)
        assert order["product_id"] == product_at_b["id"]
        # The trade at B is recorded in B's ledger under A's code, naming A.
        assert (order["registration_code"], order["registered_at"]) == (code, a.origin)

    # A cancels the registration of another product recognised at B: B delists that one.
    second = next(item for item in await listed_products_at(a)
                  if item["registration_code"] != code)
    second_code = second["registration_code"]
    await verified_at(b, second_code)
    async with b.client() as client:
        second_at_b = ok(await client.post("/recognitions", json={
            "code": second_code, "prices": industry_prices(second)},
            headers=b.headers(OPERATOR)), 201)["product"]
    await cancel_registration_at(a, second_code)
    async with b.client() as client:
        withdrawn = ok(await client.post("/recognitions/check", headers=b.headers(STAFF)))
        assert withdrawn == [second_code]
        gone = ok(await client.get(f"/products/{second_at_b['id']}",
                                   headers=b.headers(OPERATOR)))
    assert gone["state"]["value"] == "delisted"
    assert f"{a.name} cancelled registration {second_code}" in gone["delisting_reason"]

    # A's regulator revokes the operator's authorization: A delists, and B follows.
    async with a.client() as client:
        ok(await client.post(f"/authorizations/{product_at_a['authorization_id']}/revoke",
                             json={"reason": "运营机构违反授权运营协议"},
                             headers=a.headers(REGULATOR)))
    async with b.client() as client:
        withdrawn = ok(await client.post("/recognitions/check", headers=b.headers(STAFF)))
        assert withdrawn == [code]
        delisted = ok(await client.get(f"/products/{product_at_b['id']}",
                                       headers=b.headers(OPERATOR)))
        assert delisted["state"]["value"] == "delisted"
        assert a.name in delisted["delisting_reason"]
        assert "运营机构违反授权运营协议" in delisted["delisting_reason"]
        recognitions = ok(await client.get("/recognitions", headers=b.headers(STAFF)))
        assert {item["code"]: item["state"] for item in recognitions} == {
            code: "withdrawn", second_code: "withdrawn"}

        # B's database, log and chain agree, peering records included.
        reconciliation = ok(await client.post("/ledger/reconciliations",
                                              headers=b.headers(STAFF)), 201)
        assert reconciliation["discrepancies"] == []


async def test_bad_claims_are_refused_and_kept_for_staff(
        exchanges: tuple[Exchange, Exchange]) -> None:
    a, b = exchanges
    await configure_peer(b, a)
    own = await listed_product_at(b)
    async with b.client() as client:
        # A code this exchange issued is listed here the ordinary way.
        mine = await client.post("/recognitions", json={
            "code": own["registration_code"], "prices": industry_prices(own)},
            headers=b.headers(OPERATOR))
        assert mine.status_code == 422
        assert mine.json()["field"] == "code"
        # A well-formed code nobody registered on chain.
        nobody = UnifiedCode(a.issuer, SubjectKind.PRODUCT, today().year, 99_999_999)
        unknown = await client.get(f"/peers/codes/{nobody}", headers=b.headers(BUYER))
        assert unknown.status_code == 422
        assert unknown.json()["field"] == "code"
        # A malformed code names the field.
        malformed = await client.get("/peers/codes/not-a-code", headers=b.headers(BUYER))
        assert malformed.status_code == 422
        assert malformed.json()["field"] == "code"

    # Profiles claiming A's origin, signed with a key that is not A's: one names B's chain
    # account (the consortium admitted it under another origin), one A's own account (the
    # chain cannot tell; the key pinned when A was configured does).
    impostor = NoteSigner.generate(a.origin)
    server = ForgedProfileServer()
    try:
        for chain_address in (b.chain_address, a.chain_address):
            server.note = sign_profile(ExchangeProfile(
                name="冒名交易所", origin=a.origin, vkey=impostor.verifier.to_vkey(),
                api_base_url=server.url, chain_address=chain_address), impostor)
            async with b.client() as client:
                refused = await client.post("/peers", json={"api_base_url": server.url},
                                            headers=b.headers(STAFF))
            assert refused.status_code == 422
            assert refused.json()["field"] == "profile"
    finally:
        server.close()
    assert (await refusal_kinds(b)).count("profile") == 2
    async with b.client() as client:
        [peer] = ok(await client.get("/peers", headers=b.headers(STAFF)))
    assert peer["vkey"] != impostor.verifier.to_vkey()


async def test_witnesses_cosign_and_a_trade_at_b_is_provable_offline(
        exchanges: tuple[Exchange, Exchange]) -> None:
    a, b = exchanges
    await configure_peer(b, a)
    await configure_peer(a, b)

    # A's jobs submit its checkpoints to B's witness; B's cosignature then rides on A's note.
    async def cosigned_by_b() -> str | None:
        async with a.client() as client:
            note = (await client.get("/ledger/checkpoint")).text
        return note if note.count("\n— ") >= 2 else None

    note = await eventually(cosigned_by_b, timeout_s=90.0)
    async with b.client() as client:
        b_profile = (await client.get("/exchange/profile")).text
    witness_vkey = next(line.split(" ", 1)[1] for line in b_profile.splitlines()
                        if line.startswith("witness "))
    assert witness_vkey.split("+")[0] in note

    # The trade at B of A's product (an earlier test placed it) is provable from a
    # self-contained bundle, cosigned by A as B's witness.
    [order_leaf] = await b.sql(
        "SELECT min(leaf_index) AS i FROM ledger_leaves WHERE kind = 'trading.order' "
        "AND convert_from(entry, 'UTF8') LIKE '%' || $1 || '%'", a.origin)
    index = order_leaf["i"]
    assert index is not None

    async def bundle() -> dict[str, Any] | None:
        async with b.client() as client:
            response = await client.get(f"/ledger/bundle/{index}")
        return response.json() if response.status_code == 200 else None

    document = await eventually(bundle, timeout_s=90.0)
    path = b.data_dir / "bundle.json"
    path.write_text(json.dumps(document))
    async with b.client() as client:
        b_vkey = (await client.get("/ledger/vkey")).text.strip()
    async with a.client() as client:
        a_profile = (await client.get("/exchange/profile")).text
    a_witness = next(line.split(" ", 1)[1] for line in a_profile.splitlines()
                     if line.startswith("witness "))

    async def cosigned_bundle() -> dict[str, Any] | None:
        found = await bundle()
        return found if found and a_witness.split("+")[0] in json.dumps(found) else None

    document = await eventually(cosigned_bundle, timeout_s=90.0)
    path.write_text(json.dumps(document))
    printed = b.market("ledger", "verify-bundle", str(path), "--trusted-vkey", b_vkey,
                       "--trusted-witness", a_witness, "--rpc", b.env["CHAIN_RPC_URL"])
    assert "FAILED" not in printed
    # Any third party can do this offline: the proven entry names A's code and A.
    payload = json.loads(base64.b64decode(document["entry"]))["payload"]
    assert payload["registered_at"] == a.origin
    assert payload["registration_code"].startswith(f"{a.issuer}-")
    document["entry"] = document["entry"][:-4] + "AAA="
    path.write_text(json.dumps(document))
    with pytest.raises(RuntimeError, match="FAILED"):
        b.market("ledger", "verify-bundle", str(path), "--trusted-vkey", b_vkey)


async def test_a_peer_that_rewrites_its_history_is_caught(
        exchanges: tuple[Exchange, Exchange]) -> None:
    a, b = exchanges
    await configure_peer(b, a)
    # Any code A registered (its products may have been delisted by an earlier test).
    [row] = await a.sql("SELECT code FROM listings_registry WHERE state = 'registered' "
                        "ORDER BY code LIMIT 1")
    code = row["code"]
    await verified_at(b, code)
    async with b.client() as client:
        assert ok(await client.post("/witness/check", headers=b.headers(STAFF))) == 0

    # A rewrites an early leaf and re-seals its whole tree from the altered leaves: the same
    # sizes now have other roots than the ones it signed before and anchored on chain.
    a.stop()
    await a.sql("""
        DO $$ BEGIN
            SET LOCAL session_replication_role = replica;
            UPDATE ledger_leaves
               SET entry = convert_to(replace(convert_from(entry, 'UTF8'), '"registration',
                                              '"REGISTRATION'), 'UTF8')
             WHERE leaf_index = (SELECT min(leaf_index) FROM ledger_leaves
                                  WHERE kind LIKE 'registration.%');
            UPDATE ledger_leaves SET leaf_hash = sha256('\\x00'::bytea || entry);
            DELETE FROM ledger_tiles;
            DELETE FROM ledger_checkpoints;
        END $$""")
    a.start()

    async def caught() -> bool:
        async with b.client() as client:
            return ok(await client.post("/witness/check", headers=b.headers(STAFF))) > 0

    assert await eventually(caught, timeout_s=60.0)
    async with b.client() as client:
        alerts = ok(await client.get("/witness/alerts", headers=b.headers(STAFF)))
        assert alerts[0]["origin"] == a.origin
        refused = await client.get(f"/peers/codes/{code}", headers=b.headers(BUYER))
    assert refused.status_code == 422
    assert "rewritten" in refused.json()["detail"] or "extend" in refused.json()["detail"]


@pytest.fixture(scope="module")
def outsider(consortium: Consortium) -> Exchange:
    """C runs the same software, but the consortium admin never admitted it."""
    c = consortium.create("C", account=3, admitted=False)
    c.start()
    return c


async def test_an_exchange_outside_the_consortium_is_refused(
        exchanges: tuple[Exchange, Exchange], outsider: Exchange) -> None:
    _a, b = exchanges
    c = outsider
    async with b.client() as client:
        refused = await client.post("/peers", json={"api_base_url": c.base_url},
                                    headers=b.headers(STAFF))
    assert refused.status_code == 422
    assert refused.json()["field"] == "profile"
    assert "not a consortium member" in refused.json()["detail"]

    # C configures B (a member) and shares a demand with it: B does not know C and says so.
    await configure_peer(c, b)
    async with c.client() as client:
        demand = ok(await client.post("/demands", json=demand_body(),
                                      headers=c.headers(BUYER)), 201)

    async def refused_at_b() -> list[dict[str, Any]] | None:
        async with b.client() as client:
            found = ok(await client.get("/peers/refusals", headers=b.headers(STAFF)))
        from_c = [item for item in found if item["peer_origin"] == c.origin]
        # C's demo demands are shared too; wait for the one posted here.
        return from_c if any(demand["id"] in json.dumps(item["evidence"])
                             for item in from_c) else None

    refusals = await eventually(refused_at_b)
    assert {item["kind"] for item in refusals} == {"shared_demand"}
    async with b.client() as client:
        shared = ok(await client.get("/peer-demands", headers=b.headers(STAFF)))
    assert all(item["demand"]["origin"] != c.origin for item in shared)
