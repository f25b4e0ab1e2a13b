"""This exchange as a witness of its peers' logs (c2sp.org/tlog-witness over HTTP), and the
alerts staff read when a peer could not prove its history only grew."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import httpx
import msgspec
from litestar import Controller, Request, Response, Router, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import QueryParameter

from ledger.cosignature import Cosigner
from ledger.witness_store import recent_witness_alerts
from market import witnessing
from market.accounts.model import Role
from market.api.access import public, roles
from market.errors import MarketError
from market.ledger_wiring import witness_cosigner
from market.settings import Settings

TEXT = "text/plain"


class WitnessAlert(msgspec.Struct):
    id: int
    raised_at: datetime
    origin: str
    source: str
    summary: str
    evidence: dict[str, Any]


class WitnessController(Controller):
    path = "/witness"
    tags = ["witness"]
    opt = public()

    @post("/add-checkpoint", status_code=200, media_type=TEXT,
          summary="Submit a checkpoint with a consistency proof; get a cosignature "
                  "(C2SP tlog-witness). The checkpoint must be signed by an active peer's key.")
    async def add_checkpoint(self, request: Request[Any, Any, Any],
                             witness: NamedDependency[Cosigner]) -> Response[str]:
        try:
            body = (await request.body()).decode("utf-8")
        except UnicodeDecodeError as error:
            raise MarketError("the body is not UTF-8 text", field="body") from error
        answer = await witnessing.add_checkpoint(body, witness)
        if isinstance(answer, witnessing.SizeAnswer):
            return Response(answer.body, status_code=409, media_type=answer.media_type)
        return Response(answer.body, media_type=TEXT)


class WitnessAlertController(Controller):
    path = "/witness"
    tags = ["witness"]
    opt = roles(Role.STAFF)

    @post("/check", status_code=200,
          summary="Check every active peer's newest checkpoint against the one verified before, "
                  "now (a job also does it every minute); returns how many peers were caught")
    async def check_now(self, peer_timeout_s: NamedDependency[float]) -> int:
        async with httpx.AsyncClient(timeout=peer_timeout_s) as client:
            return await witnessing.watch_peer_checkpoints(client)

    @get("/alerts", summary="Peers caught presenting inconsistent checkpoints, with the "
                            "evidence (both signed notes and the failed proof), newest first")
    async def alerts(
        self, limit: Annotated[int, QueryParameter(name="limit", ge=1, le=100)] = 50,
    ) -> list[WitnessAlert]:
        return [WitnessAlert(alert.id, alert.raised_at, alert.origin, alert.source,
                             alert.summary, alert.evidence)
                for alert in await recent_witness_alerts(limit)]


def witness_router(settings: Settings) -> Router:
    cosigner = witness_cosigner(settings)
    return Router(path="/", route_handlers=[WitnessController, WitnessAlertController],
                  dependencies={
                      "witness": Provide(lambda: cosigner, sync_to_thread=False),
                      "peer_timeout_s": Provide(lambda: settings.peer_timeout_s,
                                                sync_to_thread=False)})
