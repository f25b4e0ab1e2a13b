"""Webhook delivery to a real HTTP receiver on 127.0.0.1 (so with private addresses allowed, as
the setting MARKET_WEBHOOK_ALLOW_PRIVATE does): the signature verifies with the organisation's
secret, a failed delivery is retried with backoff, only http(s) is called, and by default a
receiver on a private or loopback address is refused."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from market.accounts.model import Role
from market.errors import InvalidInputError
from market.trading import notifications
from market.trading.tables import NotificationRow
from tests.factories import make_account


class Receiver:
    """A local webhook receiver that records what it got and answers the queued statuses."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.statuses: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(receiver.statuses.pop(0) if receiver.statuses else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: object) -> None:
                return

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/exchange"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    instance = Receiver()
    thread = threading.Thread(target=instance.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield instance
    finally:
        instance.server.shutdown()
        instance.server.server_close()


async def _notify(organisation_id: object, kind: str = "offer.made") -> None:
    async with NotificationRow._meta.db.transaction():
        await notifications.notify(organisation_id, kind, "offer:1",  # type: ignore[arg-type]
                                   {"offer_id": "1", "note": "报价已提交"})


async def test_delivery_is_signed_with_the_organisations_secret(
    db: str, receiver: Receiver
) -> None:
    account = await make_account(Role.BUYER)
    created = await notifications.set_webhook(account.organisation.id, receiver.url)
    await _notify(account.organisation.id)

    report = await notifications.deliver_due(allow_private=True)
    assert report == notifications.DeliveryReport(delivered=1, retrying=0, failed=0)
    [(headers, body)] = receiver.received
    header = headers[notifications.SIGNATURE_HEADER.lower()]
    now = int(datetime.now(UTC).timestamp())
    assert notifications.verify_signature(created.secret, body, header, now=now)
    assert not notifications.verify_signature("whsec_wrong" + "x" * 30, body, header, now=now)
    assert not notifications.verify_signature(created.secret, body + b" ", header, now=now)
    # An old delivery replayed later is refused by the timestamp inside the signature.
    assert not notifications.verify_signature(created.secret, body, header, now=now + 3600)
    document = json.loads(body)
    assert document["kind"] == "offer.made"
    assert document["payload"]["note"] == "报价已提交"
    assert headers[notifications.EVENT_ID_HEADER.lower()] == document["id"]

    [stored] = await notifications.list_for(account.organisation.id)
    assert (stored.delivery, stored.attempts) == ("delivered", 1)
    # Nothing is due any more: a second run sends nothing.
    assert (await notifications.deliver_due(allow_private=True)).delivered == 0
    assert len(receiver.received) == 1


async def test_failed_delivery_is_retried_with_backoff_then_given_up(
    db: str, receiver: Receiver
) -> None:
    account = await make_account(Role.OPERATOR)
    await notifications.set_webhook(account.organisation.id, receiver.url)
    await _notify(account.organisation.id)
    receiver.statuses = [500]
    start = datetime.now(UTC) + timedelta(seconds=1)

    assert (await notifications.deliver_due(now=start, allow_private=True)).retrying == 1
    # Not due again before the backoff has passed.
    assert (await notifications.deliver_due(now=start + timedelta(seconds=5),
                                              allow_private=True)) == (
        notifications.DeliveryReport(0, 0, 0))
    delivered = await notifications.deliver_due(now=start + timedelta(seconds=11),
                                                  allow_private=True)
    assert delivered.delivered == 1
    assert len(receiver.received) == 2
    [stored] = await notifications.list_for(account.organisation.id)
    assert (stored.delivery, stored.attempts) == ("delivered", 2)

    await _notify(account.organisation.id, "offer.declined")
    receiver.statuses = [503] * notifications.MAX_ATTEMPTS
    moment = start + timedelta(seconds=20)
    for attempt in range(1, notifications.MAX_ATTEMPTS + 1):
        report = await notifications.deliver_due(now=moment, allow_private=True)
        assert report.retrying + report.failed == 1
        moment += timedelta(seconds=notifications.retry_delay_s(attempt) + 1)
    newest = (await notifications.list_for(account.organisation.id))[0]
    assert (newest.delivery, newest.attempts) == ("failed", notifications.MAX_ATTEMPTS)


def test_backoff_doubles_up_to_an_hour() -> None:
    delays = [notifications.retry_delay_s(attempt) for attempt in range(1, 12)]
    assert delays[:4] == [10.0, 20.0, 40.0, 80.0]
    assert delays[-1] == notifications.MAX_RETRY_S


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/x", "file:///etc/passwd", "javascript:x",
                                 "127.0.0.1:8080/hook", "http://user:pw@127.0.0.1/", "http://"])
async def test_only_http_urls_are_accepted(db: str, url: str) -> None:
    account = await make_account(Role.BUYER)
    with pytest.raises(InvalidInputError) as refused:
        await notifications.set_webhook(account.organisation.id, url)
    assert refused.value.field == "url"


async def test_without_a_webhook_notifications_are_only_kept(db: str, receiver: Receiver) -> None:
    account = await make_account(Role.BUYER)
    await _notify(account.organisation.id)
    assert (await notifications.deliver_due(allow_private=True)).delivered == 0
    [stored] = await notifications.list_for(account.organisation.id)
    assert stored.delivery == "none"
    assert receiver.received == []


async def test_a_receiver_on_a_loopback_address_is_refused_by_default(
    db: str, receiver: Receiver
) -> None:
    account = await make_account(Role.BUYER)
    await notifications.set_webhook(account.organisation.id, receiver.url)
    await _notify(account.organisation.id)

    report = await notifications.deliver_due()
    assert report == notifications.DeliveryReport(delivered=0, retrying=0, failed=1)
    assert receiver.received == []
    [stored] = await notifications.list_for(account.organisation.id)
    assert (stored.delivery, stored.attempts) == ("failed", 1)
    [row] = await NotificationRow.select(NotificationRow.last_error).where(
        NotificationRow.id == stored.id)
    assert row["last_error"].startswith("refused: ")


async def test_a_name_resolving_to_a_private_address_is_refused(
    db: str, receiver: Receiver
) -> None:
    account = await make_account(Role.OPERATOR)
    port = receiver.server.server_port
    await notifications.set_webhook(account.organisation.id, f"http://hooks.example:{port}/in")
    await _notify(account.organisation.id)

    async def rebinding_resolver(host: str, _port: int) -> list[str]:
        assert host == "hooks.example"
        return ["93.184.215.14", "127.0.0.1"]

    report = await notifications.deliver_due(resolve=rebinding_resolver)
    assert report.failed == 1
    assert receiver.received == []
