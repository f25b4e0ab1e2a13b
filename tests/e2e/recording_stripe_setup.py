"""The recording Stripe double as an end-to-end fixture, and settings pointing the app at it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from market.settings import Settings
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
