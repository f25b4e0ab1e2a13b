"""Stripe test doubles for the settlement tests.

- ``LocalStripe``: the localstripe server (a stateful Stripe double) in a subprocess, bound to
  127.0.0.1 on a free port with its own state file (it would otherwise listen on every interface
  and share /tmp/localstripe.pickle with anything else on the machine).
- ``RecordingStripe``: a small aiohttp app that records the exact form parameters the real SDK
  sends, for what localstripe refuses (Connect: ``application_fee_amount``,
  ``transfer_data[destination]``, ``reverse_transfer``, ``refund_application_fee``), replays
  responses per ``Idempotency-Key`` as Stripe does (and, as Stripe does, refuses a key reused
  with other parameters), and refuses refunds beyond what a payment received.
- ``WebhookInbox``: an HTTP endpoint that keeps the raw bodies and signatures localstripe posts.
- ``sign``: a Stripe-Signature header for a body, for events the tests build themselves.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import pickle
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def sign(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    stamp = int(time.time()) if timestamp is None else timestamp
    signature = hmac.new(secret.encode(), f"{stamp}.".encode() + payload,
                         hashlib.sha256).hexdigest()
    return f"t={stamp},v1={signature}"


class LocalStripe:
    def __init__(self, state_path: Path) -> None:
        self.state_path = state_path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, __file__, str(self.port), str(self.state_path)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError("localstripe exited during start-up")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("localstripe did not start listening")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()


@dataclass
class RecordedRequest:
    method: str
    path: str
    form: dict[str, str]
    idempotency_key: str | None


@dataclass
class RecordingStripe:
    """Records every request; answers PaymentIntents and Refunds like Stripe would."""

    requests: list[RecordedRequest] = field(default_factory=list)
    intents: dict[str, dict[str, Any]] = field(default_factory=dict)
    _replies: dict[str, tuple[dict[str, str], dict[str, Any]]] = field(default_factory=dict)
    # Per PaymentIntent, the total of its refunds so far, and the refunds themselves.
    refunded: dict[str, int] = field(default_factory=dict)
    refunds: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _runner: web.AppRunner | None = None
    url: str = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/payment_intents", self._create_intent)
        app.router.add_get("/v1/payment_intents/{id}", self._get_intent)
        app.router.add_post("/v1/refunds", self._create_refund)
        app.router.add_get("/v1/refunds", self._list_refunds)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def of(self, method: str, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == method and r.path == path]

    def succeed(self, intent_id: str) -> None:
        intent = self.intents[intent_id]
        intent.update(status="succeeded", amount_received=intent["amount"])

    async def _record(self, request: web.Request) -> RecordedRequest:
        form = {key: str(value) for key, value in (await request.post()).items()}
        recorded = RecordedRequest(request.method, request.path, form,
                                   request.headers.get("Idempotency-Key"))
        self.requests.append(recorded)
        return recorded

    def _replay(self, recorded: RecordedRequest) -> web.Response | None:
        """Stripe's idempotency: the stored reply for a key, or a 400 when the key was first
        used with other parameters."""
        if recorded.idempotency_key not in self._replies:
            return None
        form, reply = self._replies[recorded.idempotency_key]
        if form != recorded.form:
            return web.json_response({"error": {
                "type": "idempotency_error",
                "message": "Keys for idempotent requests can only be used with the same "
                           "parameters they were first used with."}}, status=400)
        return web.json_response(reply)

    def _remember(self, recorded: RecordedRequest, reply: dict[str, Any]) -> None:
        if recorded.idempotency_key:
            self._replies[recorded.idempotency_key] = (recorded.form, reply)

    async def _create_intent(self, request: web.Request) -> web.Response:
        recorded = await self._record(request)
        replayed = self._replay(recorded)
        if replayed is not None:
            return replayed
        form = recorded.form
        intent_id = f"pi_double_{next(self._ids)}"
        intent: dict[str, Any] = {
            "id": intent_id, "object": "payment_intent", "amount": int(form["amount"]),
            "currency": form["currency"], "status": "requires_payment_method",
            "amount_received": 0, "client_secret": f"{intent_id}_secret_x",
            "metadata": {k[len("metadata["):-1]: v for k, v in form.items()
                         if k.startswith("metadata[")},
            "application_fee_amount": int(form["application_fee_amount"])
            if "application_fee_amount" in form else None,
            "transfer_data": {"destination": form["transfer_data[destination]"]}
            if "transfer_data[destination]" in form else None,
        }
        self.intents[intent_id] = intent
        self._remember(recorded, intent)
        return web.json_response(intent)

    async def _get_intent(self, request: web.Request) -> web.Response:
        await self._record(request)
        intent = self.intents.get(request.match_info["id"])
        if intent is None:
            return web.json_response({"error": {"type": "invalid_request_error"}}, status=404)
        return web.json_response(intent)

    async def _create_refund(self, request: web.Request) -> web.Response:
        recorded = await self._record(request)
        replayed = self._replay(recorded)
        if replayed is not None:
            return replayed
        intent = self.intents[recorded.form["payment_intent"]]
        amount = int(recorded.form["amount"])
        already = self.refunded.get(intent["id"], 0)
        if already + amount > intent["amount_received"]:
            return web.json_response({"error": {
                "type": "invalid_request_error", "param": "amount",
                "message": f"Refund amount ({amount}) is greater than unrefunded amount on "
                           f"charge ({intent['amount_received'] - already})"}}, status=400)
        self.refunded[intent["id"]] = already + amount
        refund = {"id": f"re_double_{next(self._ids)}", "object": "refund",
                  "amount": amount, "currency": intent["currency"],
                  "status": "succeeded", "payment_intent": intent["id"],
                  "created": len(self.refunds.get(intent["id"], [])) + 1}
        self.refunds.setdefault(intent["id"], []).append(refund)
        self._remember(recorded, refund)
        return web.json_response(refund)

    async def _list_refunds(self, request: web.Request) -> web.Response:
        await self._record(request)
        # Newest first, as Stripe lists them.
        found = list(reversed(self.refunds.get(request.query.get("payment_intent", ""), [])))
        return web.json_response({"object": "list", "url": "/v1/refunds", "has_more": False,
                                  "data": found})


@dataclass
class Delivery:
    body: bytes
    signature: str

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


@dataclass
class WebhookInbox:
    deliveries: list[Delivery] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    url: str = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/webhooks/stripe", self._receive)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/webhooks/stripe"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _receive(self, request: web.Request) -> web.Response:
        self.deliveries.append(Delivery(await request.read(),
                                        request.headers.get("Stripe-Signature", "")))
        return web.Response(text="ok")

    async def wait_for(self, event_type: str, object_id: str, limit_s: float = 20) -> Delivery:
        """Wait for localstripe's delivery (it posts about a second after the change)."""
        deadline = asyncio.get_running_loop().time() + limit_s
        while asyncio.get_running_loop().time() < deadline:
            for delivery in self.deliveries:
                event = delivery.event
                if event["type"] == event_type and event["data"]["object"]["id"] == object_id:
                    return delivery
            await asyncio.sleep(0.05)
        raise AssertionError(f"no {event_type} webhook for {object_id}")


def _serve_localstripe(port: int, state_path: Path) -> None:
    from localstripe import resources  # noqa: PLC0415 (only in the subprocess)

    def load(store: Any) -> None:
        if state_path.exists():
            with state_path.open("rb") as state:
                store.clear()
                store.update(pickle.load(state))  # noqa: S301 (our own state file)

    def dump(store: Any) -> None:
        with state_path.open("wb") as state:
            pickle.dump(dict(store), state, protocol=pickle.HIGHEST_PROTOCOL)

    resources.Store.try_load_from_disk = load
    resources.Store.dump_to_disk = dump
    from localstripe.server import app  # noqa: PLC0415

    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    _serve_localstripe(int(sys.argv[1]), Path(sys.argv[2]))
