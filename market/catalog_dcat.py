"""The listed catalog as DCAT 3 in JSON-LD (一套标准,全国共通: MISSION §8, issue 7 §7).

Other catalogs (peer exchanges, data.gov-style portals, CKAN's DCAT harvester) read DCAT, so
the export uses only W3C/DCMI/EU vocabularies plus schema.org for prices, which DCAT itself
leaves open. Identifiers are IRIs under the exchange's API base URL so that a harvester can
follow them: a dataset's landing page is the public registry entry of its registration code.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from listings import catalog
from listings.domains import UpdateCycle, Vocabulary
from listings.product import Price
from listings.repository import ProductRecord

DCAT_MEDIA_TYPE = "application/ld+json"

CONTEXT: dict[str, Any] = {
    "dcat": "http://www.w3.org/ns/dcat#",
    "dct": "http://purl.org/dc/terms/",
    "foaf": "http://xmlns.com/foaf/0.1/",
    "skos": "http://www.w3.org/2004/02/skos/core#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "schema": "http://schema.org/",
    "dct:issued": {"@type": "xsd:dateTime"},
    "dcat:landingPage": {"@type": "@id"},
    "dct:accrualPeriodicity": {"@type": "@id"},
    "dct:language": {"@type": "@id"},
}

# The EU Publications Office frequency authority table, which DCAT-AP prescribes for
# dct:accrualPeriodicity; "realtime" is its CONT (continuously updated), "once" its NEVER.
_FREQUENCY_BASE = "http://publications.europa.eu/resource/authority/frequency/"
FREQUENCIES: dict[UpdateCycle, str] = {
    UpdateCycle.REALTIME: "CONT", UpdateCycle.DAILY: "DAILY", UpdateCycle.WEEKLY: "WEEKLY",
    UpdateCycle.MONTHLY: "MONTHLY", UpdateCycle.QUARTERLY: "QUARTERLY",
    UpdateCycle.YEARLY: "ANNUAL", UpdateCycle.ONCE: "NEVER"}
CHINESE = "http://publications.europa.eu/resource/authority/language/ZHO"
# ISO 4217 minor-unit exponents of the currencies prices may carry; others default to 2.
_CURRENCY_EXPONENTS = {"JPY": 0, "KRW": 0}


@dataclass(frozen=True)
class CatalogPublisher:
    name: str
    base_url: str


def _zh(text: str) -> dict[str, str]:
    return {"@language": "zh", "@value": text}


def _concept(base_url: str, scheme: str, term: Vocabulary) -> dict[str, Any]:
    return {"@id": f"{base_url}/vocab/{scheme}/{term.value}", "@type": "skos:Concept",
            "skos:notation": term.value, "skos:prefLabel": _zh(term.label),
            "skos:inScheme": {"@id": f"{base_url}/vocab/{scheme}"}}


def decimal_amount(amount_minor: int, currency: str) -> str:
    """Minor units as an exact decimal string in major units (schema:price is major units)."""
    exponent = _CURRENCY_EXPONENTS.get(currency, 2)
    if exponent == 0:
        return str(amount_minor)
    sign = "-" if amount_minor < 0 else ""
    major, minor = divmod(abs(amount_minor), 10**exponent)
    return f"{sign}{major}.{minor:0{exponent}d}"


def _offer(base_url: str, price: Price) -> dict[str, Any]:
    return {
        "@type": "schema:Offer",
        "schema:price": {"@value": decimal_amount(price.price_minor, price.currency),
                         "@type": "xsd:decimal"},
        "schema:priceCurrency": price.currency,
        # What one price buys (per call, per period…) and for which purpose of use: the
        # purpose decides free or paid use under the pricing rules (MISSION §6).
        "schema:unitText": price.unit.label,
        "schema:unitCode": price.unit.value,
        "schema:category": _concept(base_url, "purpose", price.purpose),
    }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def dataset(base_url: str, record: ProductRecord) -> dict[str, Any]:
    product = record.product
    code = None if record.registration_code is None else str(record.registration_code)
    dataset_id = f"{base_url}/catalog/products/{record.id}"
    document: dict[str, Any] = {
        "@id": dataset_id,
        "@type": "dcat:Dataset",
        "dct:identifier": code if code is not None else str(record.id),
        "dct:title": _zh(product.title),
        "dct:description": _zh(product.description),
        "dct:language": CHINESE,
        "dct:publisher": {"@id": f"{base_url}/organisations/{record.operator_id}",
                          "@type": "foaf:Agent", "foaf:name": record.operator_name},
        "dcat:theme": _concept(base_url, "domain", product.domain),
        "dct:accrualPeriodicity": _FREQUENCY_BASE + FREQUENCIES[product.update_cycle],
        # The classification grade (分类分级) decides who may receive the data and how.
        "dct:accessRights": {"@type": "dct:RightsStatement",
                             **_concept(base_url, "grade", product.grade)},
        "dcat:distribution": [{
            "@id": f"{dataset_id}#distribution-{product.delivery_form.value}",
            "@type": "dcat:Distribution",
            "dct:title": _zh(product.delivery_form.label),
            "dct:type": _concept(base_url, "delivery-form", product.delivery_form),
        }],
        "schema:offers": [_offer(base_url, price) for price in product.prices],
        "dct:source": [{"@id": f"{base_url}/registry/{source}", "dct:identifier": str(source)}
                       for source in sorted(str(c) for c in product.source_resource_codes)],
    }
    if code is not None:
        document["dcat:landingPage"] = f"{base_url}/registry/{code}"
    if product.scenario:
        document["dcat:keyword"] = [_zh(product.scenario)]
    issued = _iso(record.listed_at)
    if issued is not None:
        document["dct:issued"] = issued
    return document


def dcat_catalog(publisher: CatalogPublisher, records: Iterable[ProductRecord]) -> dict[str, Any]:
    """The catalog document: one dcat:Dataset per listed product."""
    base_url = publisher.base_url.rstrip("/")
    return {
        "@context": CONTEXT,
        "@id": f"{base_url}/catalog/dcat",
        "@type": "dcat:Catalog",
        "dct:title": _zh(f"{publisher.name}数据产品目录"),
        "dct:publisher": {"@id": f"{base_url}/exchange/profile", "@type": "foaf:Agent",
                          "foaf:name": publisher.name},
        "dct:language": CHINESE,
        "foaf:homepage": {"@id": base_url},
        "dcat:dataset": [dataset(base_url, record) for record in records],
    }


async def listed_products(page_size: int = catalog.MAX_PAGE_SIZE) -> Sequence[ProductRecord]:
    """Every listed product, walking the public catalog's cursor (no facets: not needed)."""
    records: list[ProductRecord] = []
    cursor: str | None = None
    while True:
        page = await catalog.search(catalog.CatalogQuery(limit=page_size, cursor=cursor),
                                    with_facets=False)
        records.extend(row.record for row in page.items)
        if page.next_cursor is None:
            return records
        cursor = page.next_cursor


async def export_catalog(publisher: CatalogPublisher) -> dict[str, Any]:
    return dcat_catalog(publisher, await listed_products())
