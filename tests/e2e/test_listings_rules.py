"""Bad input (4xx naming the field, nothing written), roles (403), tenant isolation (404), and
rollback: a failing step leaves no row and no ledger leaf behind."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from unittest import mock

import httpx
import pytest

from ledger.tables import LedgerLeaf
from listings import registrations_service
from listings.tables import AuthorizationRow, ProductRow, RegistrationRow, RegistryEntry
from tests.e2e.listings_flow import (
    backdate_notice,
    grant,
    listed_product,
    make_cast,
    ok,
    product_body,
    register,
    resource_data,
    through_notice,
    today,
)

Client = httpx.AsyncClient


async def counts() -> tuple[int, int, int, int]:
    return (
        await AuthorizationRow.count().run(),
        await RegistrationRow.count().run(),
        await ProductRow.count().run(),
        await LedgerLeaf.count().run(),
    )


def assert_refused(response: httpx.Response, status: int, field: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["field"] == field, response.json()


async def test_bad_grants_name_the_field_and_write_nothing(client: Client, db: str) -> None:
    cast = await make_cast()
    code = (await register(client, cast, {"kind": "first", "data": resource_data()}))["code"]
    await grant(client, cast, [code])
    before = await counts()
    start = today()
    term = {"start": start.isoformat(), "end": (start + timedelta(days=30)).isoformat()}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"scope": {"kind": "domain", "domains": ["weather"]}}, "scope.domains[0]"),
        ({"scope": {"kind": "everything"}}, "scope.kind"),
        ({"resource_codes": ["DEMOEX-R-2025-0000001-7"]}, "resource_codes[0]"),
        ({"resource_codes": [code[:-1] + ("0" if code[-1] != "0" else "1")]}, "resource_codes[0]"),
        (
            {
                "term": {
                    "start": (start - timedelta(days=3)).isoformat(),
                    "end": (start + timedelta(days=3)).isoformat(),
                }
            },
            "term.start",
        ),
        ({"term": {"start": start.isoformat(), "end": start.isoformat()}}, "term.end"),
        # The first grant covers meteorology for a year: a second one over it overlaps.
        ({"term": term, "scope": {"kind": "domain", "domains": ["meteorology"]}}, "term"),
        ({"operator_id": str(cast.buyer.organisation.id)}, "operator_id"),
    ]
    for overrides, field in cases:
        body = {
            "operator_id": str(cast.operator.organisation.id),
            "scope": {"kind": "domain", "domains": ["finance"]},
            "resource_codes": [code],
            "term": term,
            "conditions": "不得对外提供原始数据",
        }
        body.update(overrides)
        response = await client.post("/authorizations", json=body, headers=cast.regulator.headers)
        assert_refused(response, 422, field)
    assert await counts() == before


async def test_bad_products_name_the_field_and_write_nothing(client: Client, db: str) -> None:
    cast = await make_cast()
    code = (await register(client, cast, {"kind": "first", "data": resource_data()}))["code"]
    outside = (
        await register(
            client, cast, {"kind": "first", "data": resource_data(title="全省医院门诊量统计")}
        )
    )["code"]
    await grant(client, cast, [code])
    before = await counts()
    negative = product_body(code)
    negative["prices"][0]["price_minor"] = -5
    cases: list[tuple[dict[str, Any], str]] = [
        (negative, "prices[0].price_minor"),
        (product_body(code, domain="astrology"), "domain"),
        (product_body(code, domain="finance"), "domain"),
        (product_body(outside), "source_resource_codes"),
        (product_body("DEMOEX-R-2025-00000001"), "source_resource_codes[0]"),
        (product_body(code, grade="core"), "grade"),
        (product_body(code, grade="important", delivery_form="file"), "delivery_form"),
        (product_body(code, title="Weather"), "title"),
    ]
    for body, field in cases:
        response = await client.post("/products", json=body, headers=cast.operator.headers)
        assert_refused(response, 422, field)
    assert await counts() == before


async def test_catalog_refuses_bad_filters_and_tampered_cursors(client: Client, db: str) -> None:
    for params, field in (
        ({"domain": "weather"}, "domain"),
        ({"price_min": -1}, "price_min"),
        ({"price_min": 10, "price_max": 5}, "price_max"),
        ({"limit": 0}, "limit"),
        ({"cursor": "garbage"}, "cursor"),
    ):
        response = await client.get("/catalog", params=params)
        assert_refused(response, 422, field)


async def test_roles_are_enforced(client: Client, db: str) -> None:
    cast = await make_cast()
    code = (await register(client, cast, {"kind": "first", "data": resource_data()}))["code"]
    authorization = await grant(client, cast, [code])
    body = {
        "operator_id": str(cast.operator.organisation.id),
        "scope": {"kind": "whole"},
        "resource_codes": [code],
        "term": {"start": "2030-01-01", "end": "2031-01-01"},
        "conditions": "条件",
    }
    for account in (cast.staff, cast.operator, cast.buyer):
        response = await client.post("/authorizations", json=body, headers=account.headers)
        assert response.status_code == 403
        response = await client.post(
            f"/authorizations/{authorization['id']}/suspend",
            json={"reason": "x"},
            headers=account.headers,
        )
        assert response.status_code == 403
    for account in (cast.regulator, cast.staff, cast.buyer):
        response = await client.post("/products", json=product_body(code), headers=account.headers)
        assert response.status_code == 403
    applied = ok(
        await client.post(
            "/registrations",
            json={"kind": "first", "data": resource_data(title="另一项资源")},
            headers=cast.operator.headers,
        ),
        201,
    )
    for account in (cast.operator, cast.regulator, cast.buyer):
        response = await client.post(
            f"/registrations/{applied['id']}/accept", headers=account.headers
        )
        assert response.status_code == 403
    response = await client.post("/registrations", json={}, headers=cast.buyer.headers)
    assert response.status_code == 403


async def test_another_operators_records_answer_404(client: Client, db: str) -> None:
    cast = await make_cast()
    authorization, product = await listed_product(client, cast)
    intruder = cast.other_operator.headers
    for path in (f"/products/{product['id']}", f"/authorizations/{authorization['id']}"):
        assert (await client.get(path, headers=intruder)).status_code == 404
    for action, body in (("list", None), ("delist", {"reason": "恶意下架"})):
        response = await client.post(f"/products/{product['id']}/{action}", json=body,
                                     headers=intruder)
        assert response.status_code == 404
    assert ok(await client.get("/products", headers=intruder)) == []
    registrations = ok(await client.get("/registrations", headers=intruder))
    assert registrations == []
    # Another operator cannot file a change against a code it does not hold.
    response = await client.post(
        "/registrations",
        json={
            "kind": "cancellation",
            "target_code": product["registration_code"],
            "statement": "冒名注销",
        },
        headers=intruder,
    )
    assert_refused(response, 404, "target_code")
    still = ok(await client.get(f"/products/{product['id']}", headers=cast.operator.headers))
    assert still["state"]["value"] == "listed"


async def test_a_failing_code_assignment_leaves_nothing(
    client: Client, db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cast = await make_cast()
    applied = ok(
        await client.post(
            "/registrations",
            json={"kind": "first", "data": resource_data()},
            headers=cast.operator.headers,
        ),
        201,
    )
    await through_notice(client, cast, applied["id"])
    await backdate_notice(applied["id"], 7)
    leaves_before = await LedgerLeaf.count().run()

    # The ledger append is the last step; make it fail after the code, the registry entry and
    # the registration's new state were written in the transaction.
    failing = mock.AsyncMock(side_effect=RuntimeError("ledger unavailable"))
    monkeypatch.setattr(registrations_service, "append_record", failing)
    response = await client.post(
        f"/registrations/{applied['id']}/assign-code", headers=cast.staff.headers
    )
    assert response.status_code == 500
    assert failing.await_count == 1
    assert await RegistryEntry.count().run() == 0
    assert await LedgerLeaf.count().run() == leaves_before
    queued = await LedgerLeaf.raw("SELECT count(*) AS n FROM ledger_code_registrations").run()
    assert queued[0]["n"] == 0
    stored = ok(await client.get(f"/registrations/{applied['id']}", headers=cast.staff.headers))
    assert stored["state"]["value"] == "in_notice"
    assert stored["code"] is None

    monkeypatch.undo()
    registered = ok(
        await client.post(
            f"/registrations/{applied['id']}/assign-code", headers=cast.staff.headers
        )
    )
    # The rolled-back serial was not consumed: the first committed code is serial 1.
    assert registered["code"].split("-")[3] == "00000001"


async def test_cancelling_a_resource_code_delists_products_drawing_on_it(
    client: Client, db: str
) -> None:
    cast = await make_cast()
    _authorization, product = await listed_product(client, cast)
    resource_code = product["source_resource_codes"][0]
    cancellation = await register(
        client,
        cast,
        {"kind": "cancellation", "target_code": resource_code, "statement": "数据资源停止采集"},
    )
    assert cancellation["code"] == resource_code
    entry = ok(await client.get(f"/registry/{resource_code}"))
    assert entry["state"] == "cancelled"
    assert [r["state"]["value"] for r in entry["registrations"]] == ["cancelled", "registered"]
    delisted = ok(await client.get(f"/products/{product['id']}", headers=cast.operator.headers))
    assert delisted["state"]["value"] == "delisted"
    assert resource_code in delisted["delisting_reason"]
