"""What peers and harvesters read about this exchange (互认互通, MISSION §8): its signed
profile and its catalog as DCAT. Both are public: peers read them before any account exists."""

from __future__ import annotations

import msgspec
from eth_account import Account
from litestar import Controller, Response, Router, get
from litestar.di import NamedDependency, Provide

from ledger.profile import ExchangeProfile, sign_profile
from market.api.access import public
from market.catalog_dcat import DCAT_MEDIA_TYPE, CatalogPublisher, export_catalog
from market.ledger_wiring import ledger_signer, witness_cosigner
from market.settings import Settings

TEXT = "text/plain"


def exchange_profile(settings: Settings) -> ExchangeProfile:
    signer = ledger_signer(settings)
    chain_address = (str(Account.from_key(settings.chain_private_key).address)
                     if settings.anchoring_configured and settings.chain_private_key else None)
    return ExchangeProfile(
        name=settings.exchange_name, origin=signer.name, vkey=signer.verifier.to_vkey(),
        api_base_url=settings.base_url, chain_address=chain_address,
        ledger_contract=settings.ledger_contract_address if chain_address else None,
        code_issuer=settings.code_issuer,
        witness_vkey=witness_cosigner(settings).verifier.to_vkey())


class ExchangeController(Controller):
    path = "/exchange"
    tags = ["exchange"]
    opt = public()

    @get("/profile", summary="This exchange's profile (name, log origin, vkey, chain address, "
                             "API base URL) as a C2SP signed note by its ledger key",
         media_type=TEXT)
    async def profile(self, signed_profile: NamedDependency[str]) -> Response[str]:
        return Response(signed_profile, media_type=TEXT, headers={"Cache-Control": "no-cache"})


class CatalogDcatController(Controller):
    path = "/catalog/dcat"
    tags = ["catalog"]
    opt = public()

    @get("/", summary="The listed catalog as DCAT 3 (JSON-LD), for harvesting by other catalogs",
         media_type=DCAT_MEDIA_TYPE)
    async def dcat(self, dcat_publisher: NamedDependency[CatalogPublisher]) -> Response[bytes]:
        document = await export_catalog(dcat_publisher)
        return Response(msgspec.json.encode(document), media_type=DCAT_MEDIA_TYPE)


def exchange_router(settings: Settings) -> Router:
    """The profile is signed once at start: it changes only with the settings."""
    profile = exchange_profile(settings)
    note = sign_profile(profile, ledger_signer(settings))
    publisher = CatalogPublisher(settings.exchange_name, profile.api_base_url)
    return Router(
        path="/",
        route_handlers=[ExchangeController, CatalogDcatController],
        dependencies={
            "signed_profile": Provide(lambda: note, sync_to_thread=False),
            "dcat_publisher": Provide(lambda: publisher, sync_to_thread=False),
        },
    )
