"""The composition root: the one place that knows every package and wires them together."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as aioredis
from litestar import Litestar
from litestar.di import Provide
from litestar.logging import LoggingConfig
from litestar.middleware.base import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, ScalarRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.router import Router

from market.api.access import BearerTokenMiddleware, enforce_access, public
from market.api.accounts import OrganisationController, TokenController
from market.api.demands import DemandController, OfferController
from market.api.exchange import exchange_router
from market.api.health import HealthController, readiness_checks
from market.api.ledger import ledger_router
from market.api.ledger_bundles import ledger_bundles_router
from market.api.listings_router import listings_router
from market.api.notifications import NotificationController
from market.api.payments import orders_router
from market.api.peer_demands import peer_demand_router
from market.api.peers import peers_router
from market.api.problems import EXCEPTION_HANDLERS
from market.api.problems_docs import ProblemTypeController
from market.api.requests import ExchangeRequest
from market.api.statements import reconciliation_controller, statement_controller
from market.api.witness import witness_router
from market.database import close_pool, current_engine, export_for_piccolo, open_pool
from market.jobs import JOBS, bind_settings
from market.ledger_wiring import chain_gateway
from market.settings import Settings
from market.tasks import CeleryQueue, InProcessRunner, create_celery
from market.trading import matching_service, orders

API_VERSION = "0.1.0"


def create_app(settings: Settings) -> Litestar:
    if settings.database_url is None:
        raise ValueError("create_app needs a resolved database URL (the `market` command starts "
                         "the embedded server and passes its URL)")
    export_for_piccolo(settings.database_url)
    bind_settings(settings)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        engine = current_engine()
        await open_pool(engine, max_size=20)
        redis_client = aioredis.from_url(settings.redis_url) if settings.redis_url else None
        chain = chain_gateway(settings)
        runner = InProcessRunner(JOBS) if settings.broker_url is None else None
        app.state.task_queue = runner or CeleryQueue(create_celery(settings))
        app.state.readiness_checks = readiness_checks(
            database=lambda: engine.run_ddl("SELECT 1"),
            redis=redis_client.ping if redis_client else None,
            chain=chain.ping if chain else None,
        )
        # This process's matchers, built before the first request (market.trading).
        await matching_service.build(settings.exchange_zone)
        if runner is not None:
            runner.start()
        try:
            yield
        finally:
            if runner is not None:
                await runner.stop()
            if redis_client is not None:
                await redis_client.aclose()
            if chain is not None:
                await chain.close()
            await close_pool(engine)

    order_config = orders.config_from_settings(settings)
    return Litestar(
        # Placing orders (POST /orders, or ordering an offer) needs the fee policy and providers.
        dependencies={"order_config": Provide(lambda: order_config, sync_to_thread=False)},
        route_handlers=[HealthController, ProblemTypeController, OrganisationController,
                        TokenController, listings_router(settings), ledger_router(settings),
                        exchange_router(settings), witness_router(settings),
                        ledger_bundles_router(settings),
                        peers_router(settings),
                        DemandController, OfferController, peer_demand_router(settings),
                        NotificationController,
                        orders_router(settings), statement_controller(settings),
                        reconciliation_controller(settings)],
        guards=[enforce_access],
        middleware=[DefineMiddleware(BearerTokenMiddleware)],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=[lifespan],
        request_max_body_size=settings.request_max_body_bytes,
        request_class=ExchangeRequest,
        openapi_config=_openapi(settings),
        logging_config=LoggingConfig(
            log_exceptions="never",
            root={"level": settings.log_level, "handlers": ["queue_listener"]}),
        debug=False,
    )


def _openapi(settings: Settings) -> OpenAPIConfig:
    return OpenAPIConfig(
        title=f"{settings.exchange_name} API",
        version=API_VERSION,
        description="Public data exchange: operators, registrations, catalog, orders and a "
                    "verifiable ledger. Authenticate with `Authorization: Bearer <token>`.",
        components=Components(security_schemes={
            "bearer": SecurityScheme(type="http", scheme="bearer",
                                     description="An API token issued by the exchange")}),
        security=[{"bearer": []}],
        openapi_router=Router(path="/schema", route_handlers=[], opt=public()),
        render_plugins=[ScalarRenderPlugin(path="/"), SwaggerRenderPlugin(path="/swagger"),
                        JsonRenderPlugin(path="/openapi.json")],
    )
