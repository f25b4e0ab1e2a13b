"""Proof bundles over HTTP: one self-contained JSON document per leaf that anyone can check
offline with `market ledger verify-bundle` (issue 7 §6)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Controller, Router, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath

from ledger import serving
from ledger.bundles import KeptAnchorReceipts, Web3AnchorReceipts, build_bundle
from ledger.profile import sign_profile
from market.api.access import public
from market.api.exchange import exchange_profile
from market.errors import InvalidInputError, NotFoundError
from market.ledger_wiring import ledger_signer
from market.settings import Settings


@dataclass(frozen=True)
class BundleSources:
    profile_note: str
    # None when this exchange does not anchor its log.
    receipts: KeptAnchorReceipts | None
    contract_address: str | None


class LedgerBundleController(Controller):
    path = "/ledger/bundle"
    tags = ["ledger"]
    opt = public()

    @get("/{index:int}", summary="A self-contained proof bundle of one leaf: entry, inclusion "
                                 "proof, cosigned checkpoint, signed profile, anchor "
                                 "transaction and receipt log")
    async def bundle(self, index: FromPath[int],
                     bundle_sources: NamedDependency[BundleSources]) -> dict[str, Any]:
        if index < 0:
            raise InvalidInputError("a leaf index is not negative", field="index")
        if bundle_sources.receipts is None or bundle_sources.contract_address is None:
            raise NotFoundError("this exchange does not anchor its log, so it has no bundles")
        try:
            return await build_bundle(index, profile_note=bundle_sources.profile_note,
                                      contract_address=bundle_sources.contract_address,
                                      receipts=bundle_sources.receipts)
        except serving.LedgerLookupError as error:
            raise NotFoundError(str(error), field="index") from error


def ledger_bundles_router(settings: Settings) -> Router:
    rpc_url = settings.chain_rpc_url
    receipts = None if rpc_url is None or not settings.anchoring_configured \
        else KeptAnchorReceipts(lambda: Web3AnchorReceipts(rpc_url))
    sources = BundleSources(
        profile_note=sign_profile(exchange_profile(settings), ledger_signer(settings)),
        receipts=receipts, contract_address=settings.ledger_contract_address)
    return Router(path="/", route_handlers=[LedgerBundleController],
                  dependencies={"bundle_sources": Provide(lambda: sources, sync_to_thread=False)})
