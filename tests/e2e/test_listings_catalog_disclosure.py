"""Catalog pagination and filters, and the public disclosures in JSON and CSV."""

from __future__ import annotations

import csv
import io

import httpx

from tests.e2e.listings_flow import (
    grant,
    make_cast,
    ok,
    product_body,
    register,
    resource_data,
)

Client = httpx.AsyncClient

TITLES = (
    ("城市逐小时气象服务数据", "meteorology", "api", 50),
    ("台风路径气象预警数据", "meteorology", "report", 800),
    ("全市公交实时到站数据", "transport", "api", 20),
    ("高速公路拥堵指数数据", "transport", "file", 3000),
    ("=HYPERLINK(\"http://x\")气象", "meteorology", "file", 100),
)


async def seed_catalog(client: Client) -> tuple[object, list[dict[str, object]]]:
    cast = await make_cast()
    resource = await register(client, cast, {"kind": "first", "data": resource_data()})
    await grant(client, cast, [resource["code"]])
    products = []
    for title, domain, form, price in TITLES:
        body = product_body(
            resource["code"],
            title=title,
            domain=domain,
            delivery_form=form,
            description=f"{title}:面向企业提供的公共数据产品,按日更新,经质量控制。",
        )
        body["prices"][0]["price_minor"] = price
        product = ok(await client.post("/products", json=body, headers=cast.operator.headers), 201)
        await register(
            client,
            cast,
            {
                "kind": "first",
                "product_id": product["id"],
                "data": resource_data(
                    subject_kind="product", title=title.strip("="), domain=domain
                ),
            },
        )
        products.append(
            ok(await client.post(f"/products/{product['id']}/list", headers=cast.operator.headers))
        )
    return cast, products


async def test_catalog_search_filters_facets_and_pages(client: Client, db: str) -> None:
    cast, products = await seed_catalog(client)
    by_title = {product["title"]: product["id"] for product in products}

    weather = ok(await client.get("/catalog", params={"q": "气象"}))
    assert {item["title"] for item in weather["items"]} == {
        TITLES[0][0],
        TITLES[1][0],
        TITLES[4][0],
    }
    ranks = [item["rank"] for item in weather["items"]]
    assert ranks == sorted(ranks, reverse=True)
    assert weather["total"] == 3

    transport = ok(await client.get("/catalog", params={"q": "公交 数据"}))
    assert [item["id"] for item in transport["items"]] == [by_title[TITLES[2][0]]]

    filtered = ok(await client.get("/catalog", params={"domain": "transport",
                                                       "delivery_form": "file"}))
    assert [item["title"] for item in filtered["items"]] == [TITLES[3][0]]
    priced = ok(await client.get("/catalog", params={"purpose": "industry", "price_min": 100,
                                                     "price_max": 1000}))
    assert {item["title"] for item in priced["items"]} == {TITLES[1][0], TITLES[4][0]}

    everything = ok(await client.get("/catalog"))
    domain_counts = {facet["value"]: facet["count"] for facet in everything["facets"]["domain"]}
    assert domain_counts == {"meteorology": 3, "transport": 2}
    assert everything["total"] == 5
    # Facets count every match, in one pass with the page: purposes, forms and the operator too.
    purpose_counts = {facet["value"]: facet["count"] for facet in everything["facets"]["purpose"]}
    assert purpose_counts == {"industry": 5, "public_welfare": 5}
    forms = everything["facets"]["delivery_form"]
    form_counts = {facet["value"]: facet["count"] for facet in forms}
    assert form_counts == {"api": 2, "report": 1, "file": 2}
    [operator_facet] = everything["facets"]["operator"]
    assert operator_facet["label"] == cast.operator.organisation.name  # type: ignore[attr-defined]
    assert operator_facet["count"] == 5
    weather_domains = {facet["value"]: facet["count"] for facet in weather["facets"]["domain"]}
    assert weather_domains == {"meteorology": 3}

    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, object] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = ok(await client.get("/catalog", params=params))
        seen.extend(item["id"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(by_title.values())
    assert len(seen) == len(set(seen))

    first = ok(await client.get("/catalog", params={"limit": 1, "q": "气象"}))
    cursor = first["next_cursor"]
    # The same cursor with another search, or edited, is refused naming the cursor.
    other = await client.get("/catalog", params={"limit": 1, "q": "公交", "cursor": cursor})
    assert other.status_code == 422
    assert other.json()["field"] == "cursor"
    edited = cursor[:-2] + ("AA" if not cursor.endswith("AA") else "BB")
    response = await client.get("/catalog", params={"limit": 1, "q": "气象", "cursor": edited})
    assert response.json()["field"] == "cursor"


async def test_disclosures_in_json_and_csv(client: Client, db: str) -> None:
    cast, products = await seed_catalog(client)
    authorizations = ok(await client.get("/disclosure/authorizations"))
    assert len(authorizations) == 1
    assert authorizations[0]["operator_name"] == cast.operator.organisation.name
    assert authorizations[0]["state"] == "active"

    operators = ok(await client.get("/disclosure/operators"))
    assert len(operators) == 1
    assert len(operators[0]["products"]) == len(products)

    response = await client.get("/disclosure/products.csv")
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == len(products)
    titles = {row["title"] for row in rows}
    # The title that starts like a formula is neutralised for spreadsheets.
    assert "'" + TITLES[4][0] in titles
    assert not any(title.startswith("=") for title in titles)

    registrations = await client.get("/disclosure/registrations.csv")
    header = registrations.text.splitlines()[0]
    assert header.startswith("registration_id,kind,")
    assert len(registrations.text.splitlines()) == 1 + 1 + len(products)

    authorizations_csv = await client.get("/disclosure/authorizations.csv")
    assert authorizations_csv.text.splitlines()[0].startswith("authorization_id,operator_id")
