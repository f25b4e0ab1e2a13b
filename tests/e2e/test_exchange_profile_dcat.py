"""The exchange's public face for peers: its signed profile and its DCAT catalog export."""

from __future__ import annotations

import json

import httpx
import pytest

from ledger.profile import ProfileError, open_profile
from market.settings import Settings
from tests.e2e.listings_flow import listed_product, make_cast, ok


async def test_profile_is_a_note_signed_by_the_ledger_key(client: httpx.AsyncClient,
                                                        settings: Settings) -> None:
    response = await client.get("/exchange/profile")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    vkey = (await client.get("/ledger/vkey")).text
    profile = open_profile(response.text, expected_vkey=vkey)
    assert profile.name == settings.exchange_name
    assert profile.vkey == vkey.strip()
    assert profile.origin == vkey.split("+", 1)[0]
    assert profile.api_base_url == settings.base_url
    assert profile.code_issuer == settings.code_issuer
    # No chain configured in this app: the profile claims no chain address.
    assert profile.chain_address is None

    altered = response.text.replace(settings.base_url, "http://evil.test")
    with pytest.raises(ProfileError, match="invalid signature"):
        open_profile(altered)


async def test_dcat_export_of_a_listed_product(client: httpx.AsyncClient,
                                               settings: Settings) -> None:
    empty = await client.get("/catalog/dcat")
    assert empty.status_code == 200
    assert empty.headers["content-type"].startswith("application/ld+json")
    assert empty.json()["dcat:dataset"] == []

    cast = await make_cast()
    _, listed = await listed_product(client, cast)
    document = json.loads((await client.get("/catalog/dcat")).content)

    context = document["@context"]
    assert context["dcat"] == "http://www.w3.org/ns/dcat#"
    assert context["dct"] == "http://purl.org/dc/terms/"
    assert document["@type"] == "dcat:Catalog"
    assert document["dct:publisher"]["foaf:name"] == settings.exchange_name
    [dataset] = document["dcat:dataset"]
    assert dataset["@type"] == "dcat:Dataset"
    assert dataset["dct:identifier"] == listed["registration_code"]
    assert dataset["dct:title"] == {"@language": "zh", "@value": "城市逐小时气象服务数据"}
    assert dataset["dct:description"]["@value"].startswith("基于全省自动气象站")
    assert dataset["dct:publisher"]["foaf:name"] == cast.operator.organisation.name
    assert dataset["dct:publisher"]["@id"].endswith(str(cast.operator.organisation.id))
    assert dataset["dcat:theme"]["skos:notation"] == "meteorology"
    assert dataset["dcat:theme"]["skos:prefLabel"] == {"@language": "zh", "@value": "气象"}
    assert dataset["dct:accrualPeriodicity"] == (
        "http://publications.europa.eu/resource/authority/frequency/DAILY")
    [distribution] = dataset["dcat:distribution"]
    assert distribution["@type"] == "dcat:Distribution"
    assert distribution["dct:type"]["skos:notation"] == "api"
    assert distribution["dct:title"]["@value"] == "数据接口"
    assert dataset["dcat:landingPage"] == (
        f"{settings.base_url}/registry/{listed['registration_code']}")
    offers = {offer["schema:category"]["skos:notation"]: offer
              for offer in dataset["schema:offers"]}
    assert offers["industry"]["schema:price"] == {"@value": "0.50", "@type": "xsd:decimal"}
    assert offers["industry"]["schema:priceCurrency"] == "CNY"
    assert offers["public_welfare"]["schema:price"]["@value"] == "0.00"
    [source] = dataset["dct:source"]
    assert source["dct:identifier"] == listed["source_resource_codes"][0]
    # The landing page resolves: a harvester can follow it to the registry entry.
    registry = ok(await client.get(f"/registry/{listed['registration_code']}"))
    assert registry["code"] == listed["registration_code"]


async def test_dcat_omits_delisted_products(client: httpx.AsyncClient) -> None:
    cast = await make_cast()
    _, listed = await listed_product(client, cast)
    assert len((await client.get("/catalog/dcat")).json()["dcat:dataset"]) == 1
    ok(await client.post(f"/products/{listed['id']}/delist", json={"reason": "停止运营"},
                         headers=cast.operator.headers))
    assert (await client.get("/catalog/dcat")).json()["dcat:dataset"] == []
