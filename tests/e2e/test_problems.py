"""Malformed input of every kind answers a 4xx problem that names the field, and writes nothing."""

from __future__ import annotations

import httpx
import pytest

from market.accounts.model import Role
from market.accounts.tables import Organisation
from tests.e2e.test_auth import assert_problem
from tests.factories import make_account

JSON = {"content-type": "application/json"}

BAD_BODIES: list[tuple[str, bytes, int, str, str | None]] = [
    ("broken JSON", b'{"name": "x", "kind', 400, "bad-request", None),
    ("not an object", b'["x"]', 400, "bad-request", None),
    ("wrong type", b'{"name": 5, "kind": "operator"}', 400, "bad-request", "name"),
    ("unknown kind", b'{"name": "x", "kind": "bank"}', 400, "bad-request", "kind"),
    ("missing field", b'{"name": "x"}', 400, "bad-request", "kind"),
    ("unknown field", b'{"name": "x", "kind": "operator", "admin": true}', 400, "bad-request",
     "admin"),
    ("blank name", b'{"name": "   ", "kind": "operator"}', 400, "bad-request", "name"),
    ("invalid UTF-8", b'{"name": "\xff\xfe", "kind": "operator"}', 400, "bad-request", None),
    ("huge number", b'{"name": 1' + b"0" * 400 + b', "kind": "operator"}', 400, "bad-request",
     "name"),
]


@pytest.mark.parametrize(("case", "body", "status", "slug", "field"), BAD_BODIES,
                         ids=[case[0] for case in BAD_BODIES])
async def test_bad_body_is_a_4xx_problem_and_writes_nothing(  # noqa: PLR0917 - parametrized
        client: httpx.AsyncClient, db: str, case: str, body: bytes, status: int, slug: str,
        field: str | None) -> None:
    staff = await make_account(Role.STAFF)
    before = await Organisation.count()
    response = await client.post("/organisations", content=body, headers=JSON | staff.headers)
    problem = assert_problem(response, status, slug)
    if field is not None:
        assert problem["field"] == field, problem
    assert problem["detail"]
    assert await Organisation.count() == before


async def test_huge_integers_are_refused_with_the_field_named(client: httpx.AsyncClient,
                                                              db: str) -> None:
    buyer = await make_account(Role.BUYER)
    for value in (b"99999999999999999999999999999999", b"1e400", b"-1", b"3651"):
        response = await client.post(
            "/me/tokens", content=b'{"label": "x", "lifetime_days": ' + value + b"}",
            headers=JSON | buyer.headers)
        problem = assert_problem(response, 400, "bad-request")
        assert problem.get("field") == "lifetime_days", (value, problem)


async def test_oversized_body_is_413(client: httpx.AsyncClient, db: str) -> None:
    staff = await make_account(Role.STAFF)
    before = await Organisation.count()
    padding = "数" * 40_000  # 120 kB of UTF-8, over the 64 kB limit these tests configure
    response = await client.post("/organisations", json={"name": padding, "kind": "operator"},
                                 headers=staff.headers)
    assert_problem(response, 413, "payload-too-large")
    assert await Organisation.count() == before


async def test_duplicate_is_a_409_naming_the_field(client: httpx.AsyncClient, db: str) -> None:
    staff = await make_account(Role.STAFF)
    body = {"name": "唯一名称机构", "kind": "enterprise"}
    first = await client.post("/organisations", json=body, headers=staff.headers)
    assert first.status_code == 201
    problem = assert_problem(
        await client.post("/organisations", json=body, headers=staff.headers), 409, "conflict")
    assert problem["field"] == "name"


async def test_unknown_route_and_method_are_problems(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/no/such/route"), 404, "not-found")
    assert_problem(await client.delete("/health/live"), 405, "method-not-allowed")


async def test_malformed_path_parameter_is_4xx(client: httpx.AsyncClient, db: str) -> None:
    buyer = await make_account(Role.BUYER)
    response = await client.get("/organisations/not-a-uuid", headers=buyer.headers)
    assert 400 <= response.status_code < 500
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_every_problem_type_resolves_to_its_description(client: httpx.AsyncClient) -> None:
    listed = await client.get("/problems")
    assert listed.status_code == 200
    for problem in listed.json():
        described = await client.get(problem["type"])
        assert described.status_code == 200
        assert described.json()["title"] == problem["title"]
