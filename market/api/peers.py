"""Peer exchanges (互认互通): staff configure peers from their signed profiles and read every
refused claim; operators list a peer-registered product here by recognition; anyone signed in
can have a peer's code verified."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, Router, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from listings.codes import UnifiedCode, parse_code
from market.accounts.model import Role
from market.api.access import AUTHENTICATED, Caller, provide_principal, roles
from market.api.listings_common import ListingsConfig, actor_of
from market.api.products import PriceIn, ProductOut, price_of, product_out
from market.errors import ServiceUnavailableError
from market.ledger_wiring import ledger_signer
from market.peering import directory, recognitions, refusals
from market.peering.directory import Peer
from market.peering.links import PeerLinks, open_peer_links
from market.peering.recognitions import Recognition
from market.settings import Settings

STAFF = roles(Role.STAFF)
OVERSIGHT = roles(Role.STAFF, Role.REGULATOR)


class PeerIn(msgspec.Struct, forbid_unknown_fields=True):
    # The peer's API base URL; its signed profile is read from <url>/exchange/profile.
    api_base_url: str
    # A configured peer's key is pinned; accepting a new one is a deliberate act.
    rotate_key: bool = False


class PeerStateIn(msgspec.Struct, forbid_unknown_fields=True):
    state: str


class PeerOut(msgspec.Struct):
    id: int
    origin: str
    name: str
    vkey: str
    chain_address: str
    api_base_url: str
    code_issuer: str | None
    state: str
    configured_by: str
    configured_at: datetime


class RefusalOut(msgspec.Struct):
    id: int
    kind: str
    peer_origin: str | None
    reason: str
    evidence: dict[str, Any]
    refused_at: datetime


class RecognitionIn(msgspec.Struct, forbid_unknown_fields=True):
    code: str
    # This exchange's prices for the product, under its own approved caps.
    prices: list[PriceIn]


class RecognitionOut(msgspec.Struct):
    code: str
    peer_origin: str
    product_id: UUID
    operator_org_id: UUID
    peer_leaf_index: int
    peer_tree_size: int
    anchored_tree_size: int
    leaf_index: int
    state: str
    withdrawn_reason: str
    recognised_at: datetime
    checked_at: datetime


class RecognisedListingOut(msgspec.Struct):
    recognition: RecognitionOut
    product: ProductOut


class CodeVerificationOut(msgspec.Struct):
    code: str
    exchange_name: str
    exchange_origin: str
    state: str
    holder: str
    title: str
    leaf_index: int
    leaf_hash: str
    tree_size: int
    root_hash: str
    anchored_tree_size: int
    checkpoint: str
    recognised_here: bool


def peer_out(peer: Peer) -> PeerOut:
    return PeerOut(id=peer.id, origin=peer.origin, name=peer.name, vkey=peer.vkey,
                   chain_address=peer.chain_address, api_base_url=peer.api_base_url,
                   code_issuer=peer.code_issuer, state=peer.state,
                   configured_by=peer.configured_by, configured_at=peer.configured_at)


def recognition_out(recognition: Recognition) -> RecognitionOut:
    return RecognitionOut(**{field: getattr(recognition, field)
                             for field in RecognitionOut.__struct_fields__})


def _code(value: str) -> UnifiedCode:
    return parse_code(value, "code")


class PeerController(Controller):
    path = "/peers"
    tags = ["peers"]
    dependencies = {"principal": Provide(provide_principal, sync_to_thread=False)}
    opt = OVERSIGHT

    @post("/", opt=STAFF, summary="Configure (or update) a peer exchange from the signed profile "
                                  "at its API base URL, checked against the consortium contract")
    async def add_peer(self, principal: Caller, data: JSONBody[PeerIn],
                       peer_links: NamedDependency[PeerLinks],
                       own_origin: NamedDependency[str]) -> PeerOut:
        peer = await directory.add_peer_at(data.api_base_url, peer_links,
                                           actor=actor_of(principal).ledger_name,
                                           own_origin=own_origin, rotate_key=data.rotate_key)
        return peer_out(peer)

    @get("/", summary="The peer exchanges configured here")
    async def list_peers(self) -> list[PeerOut]:
        return [peer_out(peer) for peer in await directory.all_peers()]

    @post("/{peer_id:int}/state", opt=STAFF, status_code=200,
          summary="Suspend a peer (its claims are refused, its recognised listings withdrawn) "
                  "or reactivate it")
    async def set_state(self, principal: Caller, peer_id: FromPath[int],
                        data: JSONBody[PeerStateIn]) -> PeerOut:
        return peer_out(await directory.set_state(peer_id, data.state,
                                                  actor=actor_of(principal).ledger_name))

    @get("/refusals",
         summary="Claims of peers refused here (forged profiles, unproven codes, codes from "
                 "non-members, replays), newest first, with the evidence")
    async def list_refusals(
        self, limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100,
        before_id: FromQuery[int | None] = None,
    ) -> list[RefusalOut]:
        found = await refusals.recent_refusals(limit=limit, before_id=before_id)
        return [RefusalOut(id=item.id, kind=item.kind, peer_origin=item.peer_origin,
                           reason=item.reason, evidence=item.evidence,
                           refused_at=item.refused_at) for item in found]

    @get("/codes/{code:str}", opt=AUTHENTICATED,
         summary="Verify a registration code issued by a peer exchange: on-chain registry, "
                 "the peer's log entry with its inclusion proof, its signed checkpoint and anchor")
    async def verify_code(self, code: FromPath[str],
                          peer_links: NamedDependency[PeerLinks]) -> CodeVerificationOut:
        verified = await recognitions.verify_code(_code(code), peer_links)
        recognised = verified.recognised
        return CodeVerificationOut(
            code=recognised.code, exchange_name=verified.peer.name,
            exchange_origin=verified.peer.origin, state=verified.entry.state,
            holder=verified.data.holder, title=verified.data.title,
            leaf_index=recognised.leaf_index, leaf_hash=recognised.leaf_hash.hex(),
            tree_size=recognised.checkpoint.tree_size,
            root_hash=recognised.checkpoint.root_hash.hex(),
            anchored_tree_size=recognised.anchored_tree_size,
            checkpoint=recognised.checkpoint_note,
            recognised_here=await recognitions.get(recognised.code) is not None)


class RecognitionController(Controller):
    path = "/recognitions"
    tags = ["peers"]
    dependencies = {"principal": Provide(provide_principal, sync_to_thread=False)}
    opt = roles(Role.STAFF, Role.REGULATOR, Role.OPERATOR)

    @post("/", opt=roles(Role.OPERATOR), status_code=201,
          summary="List here a product registered and listed at a peer exchange, under its code "
                  "there (一地上架,全国互认), after verifying it against the peer's log and anchor")
    async def recognise(self, principal: Caller, data: JSONBody[RecognitionIn],
                        peer_links: NamedDependency[PeerLinks],
                        listings_config: NamedDependency[ListingsConfig]) -> RecognisedListingOut:
        prices = tuple(price_of(index, price) for index, price in enumerate(data.prices))
        recognition, product = await recognitions.recognise_and_list(
            actor_of(principal), _code(data.code), prices, links=peer_links,
            today=listings_config.today())
        return RecognisedListingOut(recognition=recognition_out(recognition),
                                    product=product_out(product))

    @post("/check", opt=STAFF, status_code=200,
          summary="Check every recognised code at its exchange now (the watch also runs on a "
                  "schedule); returns the codes withdrawn")
    async def check_now(self, peer_links: NamedDependency[PeerLinks]) -> list[str]:
        return await recognitions.watch(peer_links)

    @get("/", summary="Recognised codes: all for staff and the regulator, its own for an operator")
    async def list_recognitions(self, principal: Caller) -> list[RecognitionOut]:
        return [recognition_out(item)
                for item in await recognitions.list_for(actor_of(principal))]


def peers_router(settings: Settings) -> Router:
    own_origin = ledger_signer(settings).name
    listings_config = ListingsConfig.from_settings(settings)

    async def peer_links() -> AsyncIterator[PeerLinks]:
        async with open_peer_links(settings) as links:
            if links is None:
                raise ServiceUnavailableError("peering needs the consortium chain "
                                              "(CHAIN_RPC_URL, LEDGER_CONTRACT_ADDRESS)")
            yield links

    return Router(path="/", route_handlers=[PeerController, RecognitionController],
                  dependencies={
                      "peer_links": Provide(peer_links),
                      "own_origin": Provide(lambda: own_origin, sync_to_thread=False),
                      "listings_config": Provide(lambda: listings_config, sync_to_thread=False),
                  })
