"""An operator's data products over HTTP: create drafts, list (上架) and delist (下架) them.
An operator sees only its own products; another's answers 404."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec
from litestar import Controller, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody

from listings import products_service as service
from listings.domains import ChargingUnit, DataDomain, DeliveryForm, Grade, Purpose, UpdateCycle
from listings.product import Price, Product, QualityIndicators
from listings.repository import ProductRecord
from market.accounts.model import Role
from market.api.access import Caller, provide_principal, roles
from market.api.listings_common import (
    DIRECTORY,
    Labelled,
    ListingsConfig,
    actor_of,
    codes,
    labelled,
    vocabulary,
    within,
)


class QualityIn(msgspec.Struct, forbid_unknown_fields=True):
    completeness: int
    accuracy: int
    timeliness: int
    usability: int
    machine_readability: int


class PriceIn(msgspec.Struct, forbid_unknown_fields=True):
    purpose: str
    unit: str
    price_minor: int


class ProductCreate(msgspec.Struct, forbid_unknown_fields=True):
    title: str
    description: str
    domain: str
    source_resource_codes: list[str]
    delivery_form: str
    update_cycle: str
    grade: str
    quality: QualityIn
    permitted_purposes: list[str]
    prices: list[PriceIn]
    scenario: str | None = None


class DelistIn(msgspec.Struct, forbid_unknown_fields=True):
    reason: str


class QualityOut(msgspec.Struct):
    completeness: int
    accuracy: int
    timeliness: int
    usability: int
    machine_readability: int


class PriceOut(msgspec.Struct):
    purpose: Labelled
    unit: Labelled
    price_minor: int
    currency: str


class ProductOut(msgspec.Struct):
    id: UUID
    operator_id: UUID
    operator_name: str
    title: str
    description: str
    domain: Labelled
    source_resource_codes: list[str]
    delivery_form: Labelled
    update_cycle: Labelled
    grade: Labelled
    quality: QualityOut
    permitted_purposes: list[Labelled]
    prices: list[PriceOut]
    scenario: str | None
    state: Labelled
    delisting_reason: str
    registration_code: str | None
    authorization_id: UUID | None
    # The peer exchange whose registration this listing stands on (一地上架,全国互认).
    recognised_from: str | None
    created_at: datetime
    listed_at: datetime | None


def prices_out(prices: tuple[Price, ...]) -> list[PriceOut]:
    return [PriceOut(purpose=labelled(price.purpose), unit=labelled(price.unit),
                     price_minor=price.price_minor, currency=price.currency) for price in prices]


def quality_out(quality: QualityIndicators) -> QualityOut:
    return QualityOut(completeness=quality.completeness, accuracy=quality.accuracy,
                      timeliness=quality.timeliness, usability=quality.usability,
                      machine_readability=quality.machine_readability)


def product_out(record: ProductRecord) -> ProductOut:
    product = record.product
    return ProductOut(
        id=record.id, operator_id=record.operator_id, operator_name=record.operator_name,
        title=product.title, description=product.description, domain=labelled(product.domain),
        source_resource_codes=sorted(str(code) for code in product.source_resource_codes),
        delivery_form=labelled(product.delivery_form), update_cycle=labelled(product.update_cycle),
        grade=labelled(product.grade), quality=quality_out(product.quality),
        permitted_purposes=[labelled(purpose) for purpose in sorted(product.permitted_purposes)],
        prices=prices_out(product.prices), scenario=product.scenario,
        state=labelled(product.state), delisting_reason=product.delisting_reason,
        registration_code=None if record.registration_code is None
        else str(record.registration_code),
        authorization_id=record.authorization_id,
        recognised_from=product.recognised_from, created_at=record.created_at,
        listed_at=record.listed_at)


def price_of(index: int, price: PriceIn) -> Price:
    field = f"prices[{index}]"
    return within(field, lambda: Price(
        purpose=vocabulary(Purpose, price.purpose, "purpose"),
        unit=vocabulary(ChargingUnit, price.unit, "unit"),
        price_minor=price.price_minor))


def _product(operator_id: UUID, data: ProductCreate) -> Product:
    quality = data.quality
    return Product(
        operator_id=str(operator_id), title=data.title, description=data.description,
        domain=vocabulary(DataDomain, data.domain, "domain"),
        source_resource_codes=frozenset(codes(data.source_resource_codes,
                                              "source_resource_codes")),
        delivery_form=vocabulary(DeliveryForm, data.delivery_form, "delivery_form"),
        update_cycle=vocabulary(UpdateCycle, data.update_cycle, "update_cycle"),
        grade=vocabulary(Grade, data.grade, "grade"),
        quality=QualityIndicators(completeness=quality.completeness, accuracy=quality.accuracy,
                                  timeliness=quality.timeliness, usability=quality.usability,
                                  machine_readability=quality.machine_readability),
        permitted_purposes=frozenset(vocabulary(Purpose, value, f"permitted_purposes[{index}]")
                                     for index, value in enumerate(data.permitted_purposes)),
        prices=tuple(price_of(index, price) for index, price in enumerate(data.prices)),
        scenario=data.scenario)


class ProductController(Controller):
    path = "/products"
    tags = ["products"]
    dependencies = {"principal": Provide(provide_principal, sync_to_thread=False)}
    opt = roles(Role.OPERATOR)

    @post("/", summary="Create a draft product inside the operator's authorization")
    async def create_product(self, principal: Caller, data: JSONBody[ProductCreate],
                             listings_config: NamedDependency[ListingsConfig]) -> ProductOut:
        product = _product(principal.organisation_id, data)
        record = await service.create(actor_of(principal), product,
                                      today=listings_config.today(), directory=DIRECTORY)
        return product_out(record)

    @get("/", summary="The operator's own products")
    async def list_products(self, principal: Caller) -> list[ProductOut]:
        return [product_out(record) for record in await service.list_for(actor_of(principal))]

    @get("/{product_id:uuid}", summary="One of the operator's products")
    async def get_product(self, principal: Caller, product_id: FromPath[UUID]) -> ProductOut:
        return product_out(await service.get(actor_of(principal), product_id))

    @post("/{product_id:uuid}/list", status_code=200,
          summary="List the product (上架): it must be registered and covered by an active "
                  "authorization; every blocker is reported")
    async def list_product(self, principal: Caller, product_id: FromPath[UUID],
                           listings_config: NamedDependency[ListingsConfig]) -> ProductOut:
        return product_out(await service.list_product(actor_of(principal), product_id,
                                                      today=listings_config.today()))

    @post("/{product_id:uuid}/delist", status_code=200, summary="Delist the product (下架)")
    async def delist_product(self, principal: Caller, product_id: FromPath[UUID],
                             data: JSONBody[DelistIn]) -> ProductOut:
        return product_out(await service.delist(actor_of(principal), product_id,
                                                reason=data.reason))
