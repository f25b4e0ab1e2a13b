"""Fixtures for the settlement integration tests: Stripe doubles and a webhook inbox."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from stripe_double import LocalStripe, RecordingStripe, WebhookInbox


@pytest.fixture(scope="module")
def localstripe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStripe]:
    server = LocalStripe(Path(tmp_path_factory.mktemp("localstripe")) / "state.pickle")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def recording_stripe() -> AsyncIterator[RecordingStripe]:
    double = RecordingStripe()
    await double.start()
    try:
        yield double
    finally:
        await double.stop()


@pytest.fixture
async def webhook_inbox() -> AsyncIterator[WebhookInbox]:
    inbox = WebhookInbox()
    await inbox.start()
    try:
        yield inbox
    finally:
        await inbox.stop()
