"""The verifiable log over HTTP: C2SP tlog-tiles resources, JSON proofs, staff reconciliation.

The tlog-tiles resources (`checkpoint`, `tile/…`, `vkey`) are public and static-file shaped, so
any tlog client can verify this exchange's records without an account. Binary bodies and
hashes in JSON are standard base64, as in the checkpoint itself.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

import msgspec
from litestar import Controller, Response, Router, get, post
from litestar.di import NamedDependency, Provide
from litestar.openapi.spec import OpenAPIType
from litestar.params import FromPath, KwargDefinition, QueryParameter

from ledger import reconcile as reconciliation
from ledger import serving
from ledger.cosignature_store import cosigned_checkpoint
from ledger.note import NoteVerifier
from ledger.proof_cache import ProofCache
from ledger.tiles import TileError, parse_tile_path
from market.accounts.model import Role
from market.api.access import public, roles
from market.errors import InvalidInputError, NotFoundError
from market.ledger_wiring import ledger_signer, reconcile_options
from market.settings import Settings

# Litestar appends "; charset=utf-8" to text types: tlog-tiles' `text/plain; charset=utf-8`.
TEXT = "text/plain"
OCTETS = "application/octet-stream"
# tlog-tiles: tiles and bundles are immutable ("caching headers SHOULD be long-lived"); the
# checkpoint is mutable and "SHOULD prevent caching beyond a few seconds".
IMMUTABLE = {"Cache-Control": "public, max-age=31536000, immutable"}
MUTABLE = {"Cache-Control": "no-cache"}


@dataclass(frozen=True)
class LedgerHttpConfig:
    verifier: NoteVerifier
    reconcile_options: reconciliation.ReconcileOptions
    proof_cache: ProofCache


class EntryProof(msgspec.Struct):
    leaf_index: int
    tree_size: int
    entry: str
    # The entry is RFC 8785 canonical JSON already: embedded as it is, not parsed and re-encoded.
    record: Annotated[msgspec.Raw, KwargDefinition(schema_extra={
        "type": OpenAPIType.OBJECT, "description": "The entry's record, as JSON"})]
    leaf_hash: str
    root_hash: str
    checkpoint: str
    inclusion_proof: list[str]


class Consistency(msgspec.Struct):
    first_size: int = msgspec.field(name="from")
    second_size: int = msgspec.field(name="to")
    first_root: str
    second_root: str
    proof: list[str]


class Discrepancy(msgspec.Struct):
    kind: str
    where: str
    detail: str


class Reconciliation(msgspec.Struct):
    id: int
    trigger: str
    started_at: datetime
    finished_at: datetime
    tree_size: int
    leaves_checked: int
    discrepancy_count: int
    discrepancies: list[Discrepancy]


class Alert(msgspec.Struct):
    id: int
    raised_at: datetime
    reconciliation_id: int
    summary: str


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _not_found(error: serving.LedgerLookupError) -> NotFoundError:
    return NotFoundError(str(error))


class LedgerController(Controller):
    path = "/ledger"
    tags = ["ledger"]
    opt = public()

    @get("/checkpoint", summary="The newest signed checkpoint (C2SP tlog-checkpoint)",
         media_type=TEXT)
    async def checkpoint(self) -> Response[str]:
        try:
            # With the cosignature lines peers' witnesses returned (c2sp.org/tlog-witness).
            stored = await cosigned_checkpoint()
        except serving.LedgerLookupError as error:
            raise _not_found(error) from error
        return Response(stored.note, media_type=TEXT, headers=MUTABLE)

    @get("/vkey", summary="The log's verifier key (signed-note vkey format)", media_type=TEXT)
    async def vkey(self, ledger_http: NamedDependency[LedgerHttpConfig]) -> Response[str]:
        return Response(ledger_http.verifier.to_vkey() + "\n", media_type=TEXT, headers=MUTABLE)

    @get("/tile/{tile_path:path}", summary="A tile or entry bundle (C2SP tlog-tiles)",
         media_type=OCTETS)
    async def tile(self, tile_path: FromPath[str]) -> Response[bytes]:
        try:
            tile = parse_tile_path("tile" + tile_path)
        except TileError as error:
            raise NotFoundError(str(error), field="path") from error
        try:
            body = await (serving.read_entry_bundle(tile) if tile.is_entry_bundle
                          else serving.read_tile(tile))
        except serving.LedgerLookupError as error:
            raise _not_found(error) from error
        return Response(body, media_type=OCTETS, headers=IMMUTABLE)

    @get("/entries/{index:int}",
         summary="An entry with its inclusion proof in the newest checkpoint's tree")
    async def entry(self, index: FromPath[int],
                    ledger_http: NamedDependency[LedgerHttpConfig]) -> EntryProof:
        try:
            proved = await serving.entry_with_proof(index, ledger_http.proof_cache)
        except serving.LedgerQueryError as error:
            raise InvalidInputError(str(error), field=error.field) from error
        except serving.LedgerLookupError as error:
            raise _not_found(error) from error
        return EntryProof(
            leaf_index=proved.leaf_index, tree_size=proved.checkpoint.tree_size,
            entry=_b64(proved.entry), record=msgspec.Raw(proved.entry),
            leaf_hash=_b64(proved.leaf_hash), root_hash=_b64(proved.checkpoint.root_hash),
            checkpoint=proved.checkpoint.note,
            inclusion_proof=[_b64(element) for element in proved.inclusion_proof])

    @get("/consistency", summary="A consistency proof between two tree sizes (RFC 9162)")
    async def consistency(
        self,
        # Ranges are checked by the use case, whose errors name the wire names `from`/`to`.
        first_size: Annotated[int, QueryParameter(name="from")],
        second_size: Annotated[int | None, QueryParameter(name="to")] = None,
    ) -> Consistency:
        try:
            proof = await serving.consistency_proof(first_size, second_size)
        except serving.LedgerQueryError as error:
            raise InvalidInputError(str(error), field=error.field) from error
        except serving.LedgerLookupError as error:
            raise _not_found(error) from error
        return Consistency(proof.first_size, proof.second_size, _b64(proof.first_root),
                           _b64(proof.second_root), [_b64(element) for element in proof.proof])


def _reconciliation(stored: reconciliation.StoredReconciliation) -> Reconciliation:
    return Reconciliation(
        id=stored.id, trigger=stored.trigger, started_at=stored.report.started_at,
        finished_at=stored.report.finished_at, tree_size=stored.report.tree_size,
        leaves_checked=stored.report.leaves_checked,
        discrepancy_count=len(stored.report.discrepancies),
        discrepancies=[Discrepancy(item.kind.value, item.where, item.detail)
                       for item in stored.report.discrepancies])


class LedgerReconciliationController(Controller):
    path = "/ledger"
    tags = ["ledger"]
    opt = roles(Role.STAFF)

    @post("/reconciliations", summary="Reconcile the log now and record the result",
          status_code=201)
    async def run(self, ledger_http: NamedDependency[LedgerHttpConfig]) -> Reconciliation:
        stored = await reconciliation.reconcile_and_record(
            ledger_http.reconcile_options, trigger="staff")
        return _reconciliation(stored)

    @get("/reconciliations", summary="Recent reconciliations, newest first")
    async def list_runs(
        self, limit: Annotated[int, QueryParameter(name="limit", ge=1, le=100)] = 20,
    ) -> list[Reconciliation]:
        return [_reconciliation(stored)
                for stored in await reconciliation.recent_reconciliations(limit)]

    @get("/reconciliations/{reconciliation_id:int}", summary="One reconciliation")
    async def show(self, reconciliation_id: FromPath[int]) -> Reconciliation:
        stored = await reconciliation.find_reconciliation(reconciliation_id)
        if stored is None:
            raise NotFoundError(f"no reconciliation {reconciliation_id}")
        return _reconciliation(stored)

    @get("/alerts", summary="Alerts raised by reconciliations, newest first")
    async def alerts(
        self, limit: Annotated[int, QueryParameter(name="limit", ge=1, le=100)] = 50,
    ) -> list[Alert]:
        return [Alert(alert.id, alert.raised_at, alert.reconciliation_id, alert.summary)
                for alert in await reconciliation.recent_alerts(limit)]


def ledger_router(settings: Settings) -> Router:
    """The ledger's routes, with the log's verifier key, reconciliation options and the
    proof cache this app keeps for its log."""
    config = LedgerHttpConfig(ledger_signer(settings).verifier, reconcile_options(settings),
                              ProofCache.within(settings.ledger_proof_cache_mb))
    return Router(
        path="/",
        route_handlers=[LedgerController, LedgerReconciliationController],
        dependencies={"ledger_http": Provide(lambda: config, sync_to_thread=False)},
    )
