"""Steps of the listings flows through HTTP, shared by the listings end-to-end tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import httpx

from listings.tables import RegistrationRow
from market.accounts.model import Role
from tests.factories import Account, make_account

Client = httpx.AsyncClient


def today() -> Any:
    return datetime.now(ZoneInfo("Asia/Shanghai")).date()


@dataclass(frozen=True)
class Cast:
    regulator: Account
    staff: Account
    operator: Account
    other_operator: Account
    buyer: Account


async def make_cast() -> Cast:
    return Cast(
        regulator=await make_account(Role.REGULATOR),
        staff=await make_account(Role.STAFF),
        operator=await make_account(Role.OPERATOR),
        other_operator=await make_account(Role.OPERATOR),
        buyer=await make_account(Role.BUYER),
    )


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def resource_data(**overrides: Any) -> dict[str, Any]:
    data = {
        "subject_kind": "resource",
        "holder": "省气象局",
        "title": "全省自动气象站逐小时观测数据",
        "description": "全省自动气象站逐小时气温、降水、风速观测原始数据。",
        "data_source": "省气象局自动气象站网",
        "domain": "meteorology",
        "update_cycle": "realtime",
        "permitted_purposes": ["industry", "public_welfare"],
        "security_measures": "分级授权访问、数据脱敏、访问审计",
        "grade": "general",
    }
    data.update(overrides)
    return data


def product_body(resource_code: str, **overrides: Any) -> dict[str, Any]:
    body = {
        "title": "城市逐小时气象服务数据",
        "description": (
            "基于全省自动气象站观测数据加工的逐小时气温、降水和风速,经质量控制后提供接口服务。"
        ),
        "domain": "meteorology",
        "source_resource_codes": [resource_code],
        "delivery_form": "api",
        "update_cycle": "daily",
        "grade": "general",
        "quality": {
            "completeness": 95,
            "accuracy": 92,
            "timeliness": 90,
            "usability": 85,
            "machine_readability": 100,
        },
        "permitted_purposes": ["industry", "public_welfare"],
        "prices": [
            {"purpose": "industry", "unit": "per_call", "price_minor": 50},
            {"purpose": "public_welfare", "unit": "per_call", "price_minor": 0},
        ],
    }
    body.update(overrides)
    return body


async def backdate_notice(registration_id: str, days: int) -> None:
    """Move a notice's start into the past, standing in for the days that pass in real life."""
    await RegistrationRow.raw(
        "UPDATE listings_registrations SET notice_starts_on = notice_starts_on - {}::integer "
        "WHERE id = {}",
        days,
        UUID(registration_id),
    ).run()


async def through_notice(client: Client, cast: Cast, registration_id: str) -> dict[str, Any]:
    """Accept, review and open the notice of a registration (staff)."""
    base = f"/registrations/{registration_id}"
    ok(await client.post(f"{base}/accept", headers=cast.staff.headers))
    ok(await client.post(f"{base}/start-review", headers=cast.staff.headers))
    result: dict[str, Any] = ok(
        await client.post(f"{base}/open-notice", headers=cast.staff.headers)
    )
    return result


async def register(
    client: Client, cast: Cast, body: dict[str, Any], applicant: Account | None = None
) -> dict[str, Any]:
    """Apply, accept, review, notice, let the notice pass and assign the code."""
    applied = ok(
        await client.post(
            "/registrations", json=body, headers=(applicant or cast.operator).headers
        ),
        201,
    )
    notice = await through_notice(client, cast, applied["id"])
    await backdate_notice(applied["id"], notice["notice"]["days"])
    result: dict[str, Any] = ok(
        await client.post(
            f"/registrations/{applied['id']}/assign-code", headers=cast.staff.headers
        )
    )
    return result


async def grant(
    client: Client, cast: Cast, resource_codes: list[str], **overrides: Any
) -> dict[str, Any]:
    start = today()
    body: dict[str, Any] = {
        "operator_id": str(cast.operator.organisation.id),
        "scope": {"kind": "domain", "domains": ["meteorology", "transport"]},
        "resource_codes": resource_codes,
        "term": {"start": start.isoformat(), "end": (start + timedelta(days=365)).isoformat()},
        "conditions": "仅限在数据沙箱内加工,不得对外提供原始数据。",
    }
    body.update(overrides)
    result: dict[str, Any] = ok(
        await client.post("/authorizations", json=body, headers=cast.regulator.headers), 201
    )
    return result


async def listed_product(client: Client, cast: Cast) -> tuple[dict[str, Any], dict[str, Any]]:
    """A registered resource, an authorization over it, and a registered, listed product."""
    resource = await register(client, cast, {"kind": "first", "data": resource_data()})
    authorization = await grant(client, cast, [resource["code"]])
    product = ok(
        await client.post(
            "/products", json=product_body(resource["code"]), headers=cast.operator.headers
        ),
        201,
    )
    registration = await register(
        client,
        cast,
        {
            "kind": "first",
            "product_id": product["id"],
            "data": resource_data(
                subject_kind="product",
                holder="气象数据运营公司",
                title=product["title"],
                data_source=f"来源资源 {resource['code']}",
            ),
        },
    )
    listed = ok(
        await client.post(f"/products/{product['id']}/list", headers=cast.operator.headers)
    )
    assert listed["registration_code"] == registration["code"]
    return authorization, listed
