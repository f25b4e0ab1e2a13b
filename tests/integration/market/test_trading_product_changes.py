"""The matchers' incremental read of products: a product is changed since a moment when its own
row or the authorization it is listed under was written after it."""

from __future__ import annotations

from datetime import date, timedelta

from listings.tables import ProductRow
from market.demo import seed_demo_data
from market.trading import store

TODAY = date(2026, 11, 24)


async def _touch(table: str, where: str, value: object) -> None:
    await ProductRow.raw(
        f"UPDATE {table} SET updated_at = updated_at + interval '1 hour' WHERE {where} = {{}}",  # noqa: S608 -- constant names
        value,
    ).run()


async def test_changes_come_from_the_product_row_or_its_authorization(db: str) -> None:
    await seed_demo_data()
    everything = await store.products_changed_since(None, TODAY)
    assert len(everything) >= 2
    latest = max(change.version for change in everything)
    assert await store.products_changed_since(latest, TODAY) == []

    one = everything[0].product.product_id
    await _touch("listings_products", "id", one)
    [changed] = await store.products_changed_since(latest, TODAY)
    assert changed.product.product_id == one
    assert changed.version > latest

    [row] = await ProductRow.raw(
        "SELECT authorization_id FROM listings_products WHERE id <> {} "
        "AND authorization_id IS NOT NULL LIMIT 1",
        one,
    ).run()
    authorization = row["authorization_id"]
    under_it = {
        str(item["id"])
        for item in await ProductRow.raw(
            "SELECT id FROM listings_products WHERE authorization_id = {}", authorization
        ).run()
    }
    await _touch("listings_authorizations", "id", authorization)
    since = latest + timedelta(seconds=1)
    renewed = await store.products_changed_since(since, TODAY)
    assert {change.product.product_id for change in renewed} == under_it | {one}
