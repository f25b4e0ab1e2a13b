"""The supply side end to end through HTTP: grant → register a resource → product → register it
→ list → the catalog finds it → suspension delists it → reinstatement relists it; the registry
lookup; and the ledger records each step in the same transaction."""

from __future__ import annotations

from typing import Any

import httpx

from ledger.tables import LedgerLeaf
from listings.codes import parse_code
from tests.e2e.listings_flow import (
    backdate_notice,
    listed_product,
    make_cast,
    ok,
    register,
    resource_data,
)

Client = httpx.AsyncClient


async def leaf_kinds() -> list[str]:
    rows = await LedgerLeaf.select(LedgerLeaf.kind).order_by(LedgerLeaf.leaf_index).run()
    return [row["kind"] for row in rows]


async def catalog_ids(client: Client, **params: Any) -> list[str]:
    page = ok(await client.get("/catalog", params=params))
    return [item["id"] for item in page["items"]]


async def test_grant_register_list_search_suspend_reinstate(client: Client, db: str) -> None:
    cast = await make_cast()
    authorization, product = await listed_product(client, cast)
    assert product["state"]["value"] == "listed"
    assert product["authorization_id"] == authorization["id"]

    page = ok(await client.get("/catalog", params={"q": "气象"}))
    assert [item["id"] for item in page["items"]] == [product["id"]]
    assert page["items"][0]["registration_code"] == product["registration_code"]
    assert page["facets"]["domain"] == [{"value": "meteorology", "label": "气象", "count": 1}]

    suspended = ok(
        await client.post(
            f"/authorizations/{authorization['id']}/suspend",
            json={"reason": "运营数据安全检查未通过"},
            headers=cast.regulator.headers,
        )
    )
    assert suspended["authorization"]["state"]["value"] == "suspended"
    assert suspended["delisted_product_ids"] == [product["id"]]
    delisted = ok(await client.get(f"/products/{product['id']}", headers=cast.operator.headers))
    assert delisted["state"]["value"] == "delisted"
    assert "运营数据安全检查未通过" in delisted["delisting_reason"]
    assert await catalog_ids(client, q="气象") == []

    reinstated = ok(
        await client.post(
            f"/authorizations/{authorization['id']}/reinstate",
            json={"reason": "整改完成"},
            headers=cast.regulator.headers,
        )
    )
    assert reinstated["relisted_product_ids"] == [product["id"]]
    assert await catalog_ids(client, q="气象") == [product["id"]]

    kinds = await leaf_kinds()
    assert kinds.count("registration.code_assigned") == 2
    queued = await LedgerLeaf.raw(
        "SELECT q.code, q.leaf_index, l.kind FROM ledger_code_registrations q "
        "JOIN ledger_leaves l ON l.leaf_index = q.leaf_index ORDER BY q.leaf_index"
    ).run()
    assert [row["kind"] for row in queued] == ["registration.code_assigned"] * 2
    assert queued[-1]["code"] == product["registration_code"]
    assert kinds.count("authorization.granted") == 1
    assert kinds[-2:] == ["authorization.suspended", "authorization.active"]
    # Resource and product registrations: applied, accepted, review, notice, code — five each.
    assert len([kind for kind in kinds if kind.startswith("registration.")]) == 10


async def test_registry_lookup_shows_state_and_history(client: Client, db: str) -> None:
    cast = await make_cast()
    registered = await register(client, cast, {"kind": "first", "data": resource_data()})
    code = registered["code"]

    entry = ok(await client.get(f"/registry/{code}"))
    assert entry["state"] == "registered"
    assert entry["current"]["data"]["title"] == resource_data()["title"]
    steps = [event["step"] for event in entry["history"]]
    assert steps == ["applied", "accepted", "review_started", "notice_opened", "code_assigned"]

    # Lowercase is the same code (normalised), so it is found too.
    assert ok(await client.get(f"/registry/{code.lower()}"))["code"] == code


async def test_registry_refuses_malformed_and_mistyped_codes(client: Client, db: str) -> None:
    cast = await make_cast()
    code = (await register(client, cast, {"kind": "first", "data": resource_data()}))["code"]
    parsed = parse_code(code)
    wrong_check = "0" if parsed.check_character != "0" else "1"
    mistyped = code[:-1] + wrong_check
    for bad in ("not-a-code", mistyped, code.replace("-R-", "-Q-")):
        response = await client.get(f"/registry/{bad}")
        assert response.status_code == 422, bad
        assert response.json()["field"] == "code"

    unknown = type(parsed)(parsed.issuer, parsed.kind, parsed.year, parsed.serial + 1)
    response = await client.get(f"/registry/{unknown}")
    assert response.status_code == 404
    assert response.json()["field"] == "code"


async def test_objection_upheld_stops_the_registration(client: Client, db: str) -> None:
    cast = await make_cast()
    applied = ok(
        await client.post(
            "/registrations",
            json={"kind": "first", "data": resource_data()},
            headers=cast.operator.headers,
        ),
        201,
    )
    base = f"/registrations/{applied['id']}"
    for step in ("accept", "start-review", "open-notice"):
        ok(await client.post(f"{base}/{step}", headers=cast.staff.headers))
    objected = ok(
        await client.post(
            f"{base}/objections",
            json={"grounds": "该数据资源的持有单位登记有误"},
            headers=cast.buyer.headers,
        ),
        201,
    )
    assert objected["objections"][0]["state"]["value"] == "filed"
    # The notice is public: anyone can read it before objecting.
    notices = ok(await client.get("/registrations/notices"))
    assert [item["id"] for item in notices] == [applied["id"]]

    stopped = ok(
        await client.post(
            f"{base}/objections/1/uphold",
            json={"resolution": "经核实持有单位有误"},
            headers=cast.staff.headers,
        )
    )
    assert stopped["state"]["value"] == "stopped"
    response = await client.post(f"{base}/assign-code", headers=cast.staff.headers)
    assert response.status_code == 409
    assert "registration.objection_upheld" in await leaf_kinds()


async def test_dismissed_objection_lets_the_code_be_assigned(client: Client, db: str) -> None:
    cast = await make_cast()
    applied = ok(
        await client.post(
            "/registrations",
            json={"kind": "first", "data": resource_data()},
            headers=cast.operator.headers,
        ),
        201,
    )
    base = f"/registrations/{applied['id']}"
    for step in ("accept", "start-review", "open-notice"):
        ok(await client.post(f"{base}/{step}", headers=cast.staff.headers))
    ok(
        await client.post(
            f"{base}/objections", json={"grounds": "理由不充分的异议"}, headers=cast.buyer.headers
        ),
        201,
    )
    # While the notice runs, no code.
    response = await client.post(f"{base}/assign-code", headers=cast.staff.headers)
    assert response.status_code == 422
    assert response.json()["field"] == "notice"
    ok(
        await client.post(
            f"{base}/objections/1/dismiss", json={"resolution": "异议不成立"},
            headers=cast.staff.headers,
        )
    )
    await backdate_notice(applied["id"], 7)
    registered = ok(await client.post(f"{base}/assign-code", headers=cast.staff.headers))
    assert registered["state"]["value"] == "registered"
    assert registered["code"].startswith("DEMOEX-R-")


async def test_rejection_with_reasons(client: Client, db: str) -> None:
    cast = await make_cast()
    applied = ok(
        await client.post(
            "/registrations",
            json={"kind": "first", "data": resource_data()},
            headers=cast.operator.headers,
        ),
        201,
    )
    base = f"/registrations/{applied['id']}"
    ok(await client.post(f"{base}/accept", headers=cast.staff.headers))
    ok(await client.post(f"{base}/start-review", headers=cast.staff.headers))
    rejected = ok(
        await client.post(
            f"{base}/reject", json={"reasons": ["安全措施描述不完整"]}, headers=cast.staff.headers
        )
    )
    assert rejected["state"]["value"] == "rejected"
    assert rejected["rejection_reasons"] == ["安全措施描述不完整"]
    results = ok(await client.get("/disclosure/registrations"))
    assert [row["state"] for row in results] == ["rejected"]
