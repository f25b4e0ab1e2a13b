"""The demo seed: an authorizing body, authorized operators and at least 30 registered, listed
products across the six named domains, in Chinese; seeded once."""

from __future__ import annotations

from listings import catalog
from listings.catalog import CatalogQuery
from listings.tables import ProductRow, RegistryEntry
from market.demo import seed_demo_data


async def test_demo_seed_lists_products_across_six_domains_once(db: str) -> None:
    assert await seed_demo_data() is True
    page = await catalog.search(CatalogQuery(limit=100))
    assert page.total >= 30
    domains = {facet.label for facet in page.facets["domain"]}
    assert {"气象", "交通", "医疗健康", "金融", "空间地理", "文化旅游"} <= domains
    assert all(item.record.registration_code is not None for item in page.items)
    weather = await catalog.search(CatalogQuery(text="气象"))
    assert weather.items
    assert all(item.record.product.domain.label == "气象" for item in weather.items[:3])

    products, codes = await ProductRow.count().run(), await RegistryEntry.count().run()
    assert await seed_demo_data() is False
    assert (await ProductRow.count().run(), await RegistryEntry.count().run()) == (products, codes)
