"""Public disclosure (信息披露): authorizations granted, each operator's product list and
service capability list, and registration results, as JSON and as CSV."""

from __future__ import annotations

import msgspec
from litestar import Controller, Response, get

from listings import disclosure
from market.api.access import public
from market.api.listings_common import DIRECTORY

# Litestar appends "; charset=utf-8" to text media types itself.
CSV_MEDIA_TYPE = "text/csv"


class OperatorDisclosureOut(msgspec.Struct):
    operator_id: str
    operator_name: str
    products: list[dict[str, str]]
    services: list[dict[str, str]]


def _csv(name: str, columns: tuple[str, ...], rows: list[dict[str, str]]) -> Response[str]:
    return Response(content=disclosure.to_csv(columns, rows), media_type=CSV_MEDIA_TYPE,
                    headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})


class DisclosureController(Controller):
    path = "/disclosure"
    tags = ["disclosure"]
    opt = public()

    @get("/authorizations", summary="Authorizations granted: operator, scope, term, state")
    async def authorizations(self) -> list[dict[str, str]]:
        return await disclosure.authorizations(DIRECTORY)

    @get("/authorizations.csv", summary="Authorizations granted, as CSV")
    async def authorizations_csv(self) -> Response[str]:
        return _csv("authorizations", disclosure.AUTHORIZATION_COLUMNS,
                    await disclosure.authorizations(DIRECTORY))

    @get("/operators", summary="Each operator's product list and service capability list")
    async def operators(self) -> list[OperatorDisclosureOut]:
        return [OperatorDisclosureOut(operator_id=item.operator_id,
                                      operator_name=item.operator_name,
                                      products=item.products, services=item.services)
                for item in await disclosure.operators(DIRECTORY)]

    @get("/products.csv", summary="Every operator's product list, as CSV")
    async def products_csv(self) -> Response[str]:
        return _csv("products", disclosure.PRODUCT_COLUMNS, await disclosure.products())

    @get("/services.csv", summary="Every operator's service capability list, as CSV")
    async def services_csv(self) -> Response[str]:
        return _csv("services", disclosure.SERVICE_COLUMNS, await disclosure.services(DIRECTORY))

    @get("/registrations", summary="Registration results: registered, rejected, stopped, "
                                   "cancelled")
    async def registrations(self) -> list[dict[str, str]]:
        return await disclosure.registration_results()

    @get("/registrations.csv", summary="Registration results, as CSV")
    async def registrations_csv(self) -> Response[str]:
        return _csv("registrations", disclosure.REGISTRATION_COLUMNS,
                    await disclosure.registration_results())
