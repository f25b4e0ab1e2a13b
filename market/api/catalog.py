"""The public catalog (目录): Chinese full-text search over listed products, with filters, facet
counts and cursor pagination."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec
from litestar import Controller, get
from litestar.params import FromQuery

from listings import catalog
from listings.domains import DataDomain, DeliveryForm, Grade, Purpose
from market.api.access import public
from market.api.listings_common import Labelled, labelled, vocabulary
from market.api.products import PriceOut, QualityOut, prices_out, quality_out


class CatalogItem(msgspec.Struct):
    id: UUID
    registration_code: str
    title: str
    description: str
    domain: Labelled
    delivery_form: Labelled
    update_cycle: Labelled
    grade: Labelled
    operator_id: UUID
    operator_name: str
    permitted_purposes: list[Labelled]
    prices: list[PriceOut]
    quality: QualityOut
    scenario: str | None
    listed_at: datetime | None
    rank: float


class FacetOut(msgspec.Struct):
    value: str
    label: str
    count: int


class CatalogPageOut(msgspec.Struct):
    items: list[CatalogItem]
    facets: dict[str, list[FacetOut]]
    total: int
    next_cursor: str | None


class CatalogController(Controller):
    path = "/catalog"
    tags = ["catalog"]
    opt = public()

    @get("/", summary="Search listed products: q (Chinese full text), filters, facets, cursor")
    async def search(self, *, q: FromQuery[str | None] = None, domain: FromQuery[str | None] = None,
                     delivery_form: FromQuery[str | None] = None,
                     grade: FromQuery[str | None] = None,
                     purpose: FromQuery[str | None] = None, price_min: FromQuery[int | None] = None,
                     price_max: FromQuery[int | None] = None,
                     operator: FromQuery[UUID | None] = None,
                     limit: FromQuery[int] = catalog.DEFAULT_PAGE_SIZE,
                     cursor: FromQuery[str | None] = None) -> CatalogPageOut:
        query = catalog.CatalogQuery(
            text=q.strip() if q and q.strip() else None,
            domain=None if domain is None else vocabulary(DataDomain, domain, "domain"),
            delivery_form=None if delivery_form is None
            else vocabulary(DeliveryForm, delivery_form, "delivery_form"),
            grade=None if grade is None else vocabulary(Grade, grade, "grade"),
            purpose=None if purpose is None else vocabulary(Purpose, purpose, "purpose"),
            price_min_minor=price_min, price_max_minor=price_max, operator_id=operator,
            limit=limit, cursor=cursor)
        page = await catalog.search(query)
        items = []
        for row in page.items:
            record, product = row.record, row.record.product
            items.append(CatalogItem(
                id=record.id, registration_code=str(record.registration_code),
                title=product.title, description=product.description,
                domain=labelled(product.domain), delivery_form=labelled(product.delivery_form),
                update_cycle=labelled(product.update_cycle), grade=labelled(product.grade),
                operator_id=record.operator_id, operator_name=record.operator_name,
                permitted_purposes=[labelled(p) for p in sorted(product.permitted_purposes)],
                prices=prices_out(product.prices), quality=quality_out(product.quality),
                scenario=product.scenario, listed_at=record.listed_at, rank=row.rank))
        facets = {name: [FacetOut(value=value.value, label=value.label, count=value.count)
                         for value in values] for name, values in page.facets.items()}
        return CatalogPageOut(items=items, facets=facets, total=page.total,
                              next_cursor=page.next_cursor)
