"""The listings routes as one router, carrying the settings they need as a dependency."""

from __future__ import annotations

from litestar import Router
from litestar.di import Provide

from market.api.authorizations import AuthorizationController
from market.api.catalog import CatalogController
from market.api.disclosure import DisclosureController
from market.api.listings_common import ListingsConfig
from market.api.products import ProductController
from market.api.registrations import RegistrationController
from market.api.registry import RegistryController
from market.settings import Settings


def listings_router(settings: Settings) -> Router:
    config = ListingsConfig.from_settings(settings)
    return Router(
        path="/",
        route_handlers=[AuthorizationController, RegistrationController, RegistryController,
                        ProductController, CatalogController, DisclosureController],
        dependencies={"listings_config": Provide(lambda: config, sync_to_thread=False)},
    )
