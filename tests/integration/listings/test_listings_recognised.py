"""Products listed on a peer exchange's registration (一地上架,全国互认): listed without a local
authorization under the peer's code, once per code, never registered a second time here, and
delisted by the registry when the peer's registration or authorization ends."""

from __future__ import annotations

import dataclasses
from datetime import date
from uuid import uuid4

import pytest

from listings import products_service, registrations_service, repository
from listings.codes import UnifiedCode
from listings.context import Actor
from listings.domains import (
    ChargingUnit,
    DataDomain,
    DeliveryForm,
    Grade,
    Purpose,
    SubjectKind,
    UpdateCycle,
)
from listings.errors import DomainRuleError, DomainValueError
from listings.product import Price, Product, ProductState, QualityIndicators
from listings.registration import RegistrationKind
from tests.integration.listings.test_listings_services import Directory, data

TODAY = date(2026, 11, 21)
PEER = "exchange-a.test/ledger"
PEER_CODE = UnifiedCode("AEX", SubjectKind.PRODUCT, 2026, 7)


def recognised_product(operator: Actor, title: str = "高速公路拥堵指数") -> Product:
    return Product(
        operator_id=str(operator.organisation_id), title=title,
        description="基于收费站车流量计算的逐小时拥堵指数。", domain=DataDomain.TRANSPORT,
        source_resource_codes=frozenset({UnifiedCode("AEX", SubjectKind.RESOURCE, 2026, 3)}),
        delivery_form=DeliveryForm.API, update_cycle=UpdateCycle.DAILY, grade=Grade.GENERAL,
        quality=QualityIndicators(90, 90, 90, 90, 90),
        permitted_purposes=frozenset({Purpose.INDUSTRY}),
        prices=(Price(Purpose.INDUSTRY, ChargingUnit.PER_CALL, 10),), recognised_from=PEER)


@pytest.fixture
def operator() -> Actor:
    return Actor(uuid4(), "operator")


@pytest.fixture
def directory(operator: Actor) -> Directory:
    return Directory({operator.organisation_id: "交通数据运营公司"})


async def test_listed_under_the_peer_code_without_a_local_authorization(
        db: str, operator: Actor, directory: Directory) -> None:
    record = await products_service.list_recognised(
        operator, recognised_product(operator), PEER_CODE, today=TODAY, directory=directory)
    assert record.product.state is ProductState.LISTED
    assert record.product.recognised_from == PEER
    assert record.registration_code == PEER_CODE
    assert record.authorization_id is None

    with pytest.raises(DomainRuleError) as twice:
        await products_service.list_recognised(
            operator, recognised_product(operator, "另一个标题的产品"), PEER_CODE, today=TODAY,
            directory=directory)
    assert twice.value.field == "code"


async def test_only_product_and_service_codes_of_the_named_exchange(
        db: str, operator: Actor, directory: Directory) -> None:
    resource_code = UnifiedCode("AEX", SubjectKind.RESOURCE, 2026, 9)
    with pytest.raises(DomainRuleError) as resource:
        await products_service.list_recognised(
            operator, recognised_product(operator), resource_code, today=TODAY,
            directory=directory)
    assert resource.value.field == "code"
    local = dataclasses.replace(recognised_product(operator), recognised_from=None)
    with pytest.raises(DomainValueError) as unnamed:
        await products_service.list_recognised(operator, local, PEER_CODE, today=TODAY,
                                               directory=directory)
    assert unnamed.value.field == "recognised_from"
    assert await products_service.list_for(operator) == []


async def test_a_recognised_product_is_not_registered_again_here(
        db: str, operator: Actor, directory: Directory) -> None:
    await products_service.list_recognised(
        operator, recognised_product(operator), PEER_CODE, today=TODAY, directory=directory)
    with pytest.raises(DomainRuleError) as again:
        await registrations_service.apply(
            operator, kind=RegistrationKind.FIRST,
            data=data("高速公路拥堵指数", SubjectKind.SERVICE), target_code=None, statement="",
            product_id=None, today=TODAY)
    assert again.value.field == "data.title"
    assert str(PEER_CODE) in str(again.value)


async def test_delisted_by_the_registry_when_the_peer_registration_ends(
        db: str, operator: Actor, directory: Directory) -> None:
    record = await products_service.list_recognised(
        operator, recognised_product(operator), PEER_CODE, today=TODAY, directory=directory)
    reason = "A数据交易所 cancelled registration on 2026-11-21"
    assert await products_service.delist_recognised(PEER_CODE, reason=reason) == [record.id]
    delisted = await products_service.get(operator, record.id)
    assert delisted.product.state is ProductState.DELISTED
    assert delisted.product.delisting_reason == reason
    assert delisted.delisted_by == "registry"
    assert await products_service.delist_recognised(PEER_CODE, reason=reason) == []


async def test_no_longer_sellable_once_the_registry_delists_it(
        db: str, operator: Actor, directory: Directory) -> None:
    """What access grants follow: a recognised product has no local authorization, so it stops
    being sellable when the registry delists it, and a product that is gone is not sellable."""
    record = await products_service.list_recognised(
        operator, recognised_product(operator), PEER_CODE, today=TODAY, directory=directory)
    vanished = uuid4()
    assert await repository.products_no_longer_sellable([record.id, vanished]) == [vanished]
    await products_service.delist_recognised(PEER_CODE, reason="A数据交易所 cancelled it")
    assert await repository.products_no_longer_sellable([record.id]) == [record.id]
