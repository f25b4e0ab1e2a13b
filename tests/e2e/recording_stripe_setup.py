"""The recording Stripe double as an end-to-end fixture, settings pointing the app at it, and
placing an order paid by either provider."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from market.settings import Settings
from tests.integration.market.orders_setup import Market, today
from tests.integration.settlement.stripe_double import RecordingStripe


@pytest.fixture
async def recording_stripe() -> AsyncIterator[RecordingStripe]:
    double = RecordingStripe()
    await double.start()
    try:
        yield double
    finally:
        await double.stop()


def recording_stripe_settings(db: str, tmp_path: Path, double: RecordingStripe,
                              webhook_secret: str) -> Settings:
    return Settings(database_url=db, data_dir=tmp_path, request_max_body_bytes=64 * 1024,
                    stripe_api_key="sk_test_recording", stripe_api_base=double.url,
                    stripe_webhook_secret=webhook_secret)


async def place(client: httpx.AsyncClient, market: Market, key: str,
                method: str = "bank_transfer") -> dict[str, Any]:
    """Ten calls of the market's product for industry use, paid by `method`."""
    body = {"product_id": str(market.product_id), "purpose": "industry", "unit": "per_call",
            "quantity": 10, "terms_accepted": True, "payment_method": method,
            "term": {"start": today().isoformat(),
                     "end": (today() + timedelta(days=30)).isoformat()}}
    placed = await client.post("/orders", json=body,
                               headers={**market.buyer.headers, "Idempotency-Key": key})
    assert placed.status_code == 201, placed.text
    order: dict[str, Any] = placed.json()
    return order
