"""Liveness and readiness probes, public so that load balancers and orchestrators can call them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from litestar import Controller, Response, get
from litestar.datastructures import State

from market.api.access import public

Check = Callable[[], Awaitable[object]]


class Live(msgspec.Struct):
    status: str


class Ready(msgspec.Struct):
    status: str
    checks: dict[str, str]


class HealthController(Controller):
    path = "/health"
    tags = ["health"]
    opt = public()

    @get("/live", summary="The process is up")
    async def live(self) -> Live:
        return Live(status="ok")

    @get("/ready", summary="The database (and Redis and the chain, when configured) answer")
    async def ready(self, state: State) -> Response[Ready]:
        checks: dict[str, Check] = state.readiness_checks
        results: dict[str, str] = {}
        for name, check in checks.items():
            try:
                await check()
            except Exception as error:  # any failure means "not ready", reported by name
                results[name] = f"failing: {type(error).__name__}"
            else:
                results[name] = "ok"
        ready = all(result == "ok" for result in results.values())
        body = Ready(status="ready" if ready else "not ready", checks=results)
        return Response(content=body, status_code=200 if ready else 503)


def readiness_checks(**checks: Check | None) -> dict[str, Any]:
    """The configured checks, leaving out parts that are not configured (None)."""
    return {name: check for name, check in checks.items() if check is not None}
