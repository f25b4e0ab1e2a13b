"""The demo seed's demands: open, in Chinese, from the demo buyers, each matching demo
products; seeded once."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from market.demo import DEMO_DEMANDS, seed_demo_data
from market.trading import matching_service, store
from market.trading.store import DemandState
from market.trading.tables import DemandRow


async def test_demo_demands_are_open_and_each_matches_demo_products(db: str) -> None:
    assert await seed_demo_data() is True
    records = await store.list_demands()
    assert len(records) == len(DEMO_DEMANDS)
    assert all(record.state is DemandState.OPEN for record in records)
    service = matching_service.MatchingService(ZoneInfo("Asia/Shanghai"))
    await service.sync()
    for record in records:
        matches = service.top_products(record)
        assert matches, record.demand.title
        best = service.products.get(matches[0].product_id)
        assert best is not None
        assert best.domain in record.demand.domains

    assert await seed_demo_data() is False
    assert await DemandRow.count().run() == len(DEMO_DEMANDS)
