"""Authentication and access: tokens missing, malformed, expired or revoked; wrong roles;
and tenant isolation (another organisation's resource answers 404, reads and writes alike)."""

from __future__ import annotations

import httpx
import pytest
from litestar import Litestar

from market.accounts.model import Role
from market.accounts.tables import ApiToken
from market.api.access import undeclared_routes
from tests.factories import make_account

Client = httpx.AsyncClient


def assert_problem(response: object, status: int, slug: str) -> dict[str, object]:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    assert response.headers["content-type"].startswith("application/problem+json")  # type: ignore[attr-defined]
    body: dict[str, object] = response.json()  # type: ignore[attr-defined]
    assert body["type"] == f"/problems/{slug}"
    assert body["status"] == status
    return body


async def test_every_route_states_who_may_call_it(app: Litestar) -> None:
    assert undeclared_routes(app) == []


async def test_missing_token_is_401_with_a_bearer_challenge(client: Client) -> None:
    response = await client.get("/me")
    assert_problem(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", [
    "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "pdx_abc", "Bearer not-a-token",
    "Bearer pdx_" + "A" * 43,
])
async def test_malformed_or_unknown_token_is_401(client: Client, db: str, header: str) -> None:
    response = await client.get("/me", headers={"Authorization": header})
    assert_problem(response, 401, "unauthenticated")


async def test_valid_token_identifies_the_caller(client: Client, db: str) -> None:
    buyer = await make_account(Role.BUYER)
    response = await client.get("/me", headers=buyer.headers)
    assert response.status_code == 200
    body = response.json()
    assert body["user"]["email"] == buyer.user.email
    assert body["user"]["role"] == "buyer"
    assert body["organisation"]["id"] == str(buyer.organisation.id)


async def test_expired_token_is_refused(client: Client, db: str) -> None:
    buyer = await make_account(Role.BUYER)
    await ApiToken.raw(
        "UPDATE api_tokens SET created_at = now() - interval '2 days', "
        "expires_at = now() - interval '1 second' WHERE id = {}", buyer.token_id).run()
    body = assert_problem(await client.get("/me", headers=buyer.headers), 401, "unauthenticated")
    assert "expired" in str(body["detail"])


async def test_revoked_token_is_refused_at_once(client: Client, db: str) -> None:
    buyer = await make_account(Role.BUYER)
    revoked = await client.delete(f"/tokens/{buyer.token_id}", headers=buyer.headers)
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    body = assert_problem(await client.get("/me", headers=buyer.headers), 401, "unauthenticated")
    assert "revoked" in str(body["detail"])


async def test_a_token_is_shown_once_and_stored_only_as_a_hash(client: Client, db: str) -> None:
    buyer = await make_account(Role.BUYER)
    issued = await client.post("/me/tokens", json={"label": "报表脚本", "lifetime_days": 7},
                               headers=buyer.headers)
    assert issued.status_code == 201
    secret = issued.json()["token"]
    stored = await ApiToken.select().where(ApiToken.id == issued.json()["details"]["id"]).first()
    assert stored is not None
    assert secret not in str(stored.values())
    listed = await client.get("/me/tokens", headers={"Authorization": f"Bearer {secret}"})
    assert listed.status_code == 200
    assert secret not in listed.text
    assert {token["label"] for token in listed.json()} == {"test", "报表脚本"}


async def test_wrong_role_is_403(client: Client, db: str) -> None:
    buyer = await make_account(Role.BUYER)
    response = await client.post("/organisations", json={"name": "新机构", "kind": "operator"},
                                 headers=buyer.headers)
    assert_problem(response, 403, "forbidden")


async def test_staff_may_register_organisations_and_users(client: Client, db: str) -> None:
    staff = await make_account(Role.STAFF)
    created = await client.post("/organisations",
                                json={"name": "新气象运营公司", "kind": "operator"},
                                headers=staff.headers)
    assert created.status_code == 201
    user = await client.post(f"/organisations/{created.json()['id']}/users",
                             json={"email": "New@Operator.example", "display_name": "运营员"},
                             headers=staff.headers)
    assert user.status_code == 201
    assert user.json()["role"] == "operator"
    assert user.json()["email"] == "new@operator.example"
    token = await client.post(f"/users/{user.json()['id']}/tokens", json={"label": "首个令牌"},
                              headers=staff.headers)
    assert token.status_code == 201
    me = await client.get("/me", headers={"Authorization": f"Bearer {token.json()['token']}"})
    assert me.json()["organisation"]["name"] == "新气象运营公司"


async def test_another_tenants_organisation_answers_404(client: Client, db: str) -> None:
    buyer = await make_account(Role.BUYER)
    other = await make_account(Role.BUYER)
    own = await client.get(f"/organisations/{buyer.organisation.id}", headers=buyer.headers)
    assert own.status_code == 200
    foreign = await client.get(f"/organisations/{other.organisation.id}", headers=buyer.headers)
    assert_problem(foreign, 404, "not-found")
    foreign_users = await client.get(f"/organisations/{other.organisation.id}/users",
                                     headers=buyer.headers)
    assert_problem(foreign_users, 404, "not-found")
    listed = await client.get("/organisations", headers=buyer.headers)
    assert [item["id"] for item in listed.json()] == [str(buyer.organisation.id)]


async def test_another_tenants_token_cannot_be_revoked_and_stays_valid(client: Client,
                                                                       db: str) -> None:
    attacker = await make_account(Role.OPERATOR)
    victim = await make_account(Role.OPERATOR)
    response = await client.delete(f"/tokens/{victim.token_id}", headers=attacker.headers)
    assert_problem(response, 404, "not-found")
    assert (await client.get("/me", headers=victim.headers)).status_code == 200


async def test_staff_see_every_organisation(client: Client, db: str) -> None:
    staff = await make_account(Role.STAFF)
    buyer = await make_account(Role.BUYER)
    response = await client.get(f"/organisations/{buyer.organisation.id}", headers=staff.headers)
    assert response.status_code == 200
    listed = await client.get("/organisations", headers=staff.headers)
    assert {str(buyer.organisation.id), str(staff.organisation.id)} <= {
        item["id"] for item in listed.json()}
