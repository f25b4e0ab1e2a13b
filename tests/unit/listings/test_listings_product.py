from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import date

import pytest

from listings.authorization import Authorization, Scope, revoke, suspend
from listings.codes import UnifiedCode
from listings.domains import (
    ChargingUnit,
    DataDomain,
    DeliveryForm,
    Grade,
    Purpose,
    ScopeKind,
    SubjectKind,
)
from listings.errors import DomainRuleError, DomainValueError, InvalidTransitionError
from listings.product import (
    BlockerReason,
    ListingBlockedError,
    Price,
    Product,
    ProductState,
    QualityIndicators,
    buyer_may_receive,
    delist,
    delivery_allowed,
    list_product,
    listing_blockers,
)
from listings.registration import RegistrationState

MakeProduct = Callable[..., Product]
MakeAuthorization = Callable[..., Authorization]
ON = date(2025, 6, 1)


def resource(serial: int) -> UnifiedCode:
    return UnifiedCode(issuer="GZDEX", kind=SubjectKind.RESOURCE, year=2024, serial=serial)


GENERAL_SOURCES = {resource(1): Grade.GENERAL, resource(2): Grade.IMPORTANT}


# --- grade rules ------------------------------------------------------------------------------


@pytest.mark.parametrize("form", list(DeliveryForm))
def test_delivery_forms_by_grade(form: DeliveryForm) -> None:
    assert delivery_allowed(Grade.GENERAL, form)
    assert delivery_allowed(Grade.IMPORTANT, form) is (
        form in {DeliveryForm.SANDBOX, DeliveryForm.API}
    )
    assert not delivery_allowed(Grade.CORE, form)


@pytest.mark.parametrize(
    ("grade", "clearance", "allowed"),
    [
        (Grade.GENERAL, Grade.GENERAL, True),
        (Grade.GENERAL, Grade.IMPORTANT, True),
        (Grade.IMPORTANT, Grade.GENERAL, False),
        (Grade.IMPORTANT, Grade.IMPORTANT, True),
        (Grade.IMPORTANT, Grade.CORE, True),
        (Grade.CORE, Grade.CORE, False),
    ],
)
def test_buyer_clearance(grade: Grade, clearance: Grade, allowed: bool) -> None:
    assert buyer_may_receive(grade, clearance) is allowed


# --- building a product -----------------------------------------------------------------------


def test_a_valid_product_is_a_draft(make_product: MakeProduct) -> None:
    product = make_product(title="  全省逐小时气象观测数据  ")
    assert product.state is ProductState.DRAFT
    assert product.title == "全省逐小时气象观测数据"
    assert product.price_for(Purpose.INDUSTRY, ChargingUnit.PER_CALL) == Price(
        Purpose.INDUSTRY, ChargingUnit.PER_CALL, 50
    )
    assert product.price_for(Purpose.INDUSTRY, ChargingUnit.PER_VOLUME) is None


def test_important_data_through_a_sandbox_is_allowed(make_product: MakeProduct) -> None:
    product = make_product(grade=Grade.IMPORTANT, delivery_form=DeliveryForm.SANDBOX)
    assert product.grade is Grade.IMPORTANT


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"title": "Weather API"}, "title"),
        ({"title": "气"}, "title"),
        ({"title": "气" * 51}, "title"),
        ({"description": "太短的描述"}, "description"),
        ({"description": "描" * 2001}, "description"),
        ({"operator_id": ""}, "operator_id"),
        ({"domain": "meteorology"}, "domain"),
        ({"source_resource_codes": frozenset()}, "source_resource_codes"),
        (
            {
                "source_resource_codes": frozenset(
                    {UnifiedCode("GZDEX", SubjectKind.PRODUCT, 2025, 1)}
                )
            },
            "source_resource_codes",
        ),
        ({"grade": Grade.CORE}, "grade"),
        ({"grade": Grade.IMPORTANT, "delivery_form": DeliveryForm.FILE}, "delivery_form"),
        ({"grade": Grade.IMPORTANT, "delivery_form": DeliveryForm.REPORT}, "delivery_form"),
        ({"permitted_purposes": frozenset()}, "permitted_purposes"),
        ({"scenario": " "}, "scenario"),
        ({"state": ProductState.DELISTED}, "delisting_reason"),
        ({"delisting_reason": "下架"}, "delisting_reason"),
    ],
)
def test_invalid_products_name_the_field(
    make_product: MakeProduct, overrides: dict[str, object], field: str
) -> None:
    with pytest.raises((DomainRuleError, DomainValueError)) as caught:
        make_product(**overrides)
    assert caught.value.field == field


@pytest.mark.parametrize("value", [-1, 101, True, 99.5])
def test_quality_indicators_are_integers_from_0_to_100(value: object) -> None:
    with pytest.raises(DomainValueError) as caught:
        QualityIndicators(
            completeness=100,
            accuracy=value,  # type: ignore[arg-type]
            timeliness=0,
            usability=50,
            machine_readability=50,
        )
    assert caught.value.field == "quality.accuracy"


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ((Purpose.INDUSTRY, ChargingUnit.PER_CALL, -1), "price_minor"),
        ((Purpose.INDUSTRY, ChargingUnit.PER_CALL, 1.5), "price_minor"),
        ((Purpose.INDUSTRY, ChargingUnit.PER_CALL, True), "price_minor"),
        ((Purpose.INDUSTRY, ChargingUnit.PER_CALL, 100, "USD"), "currency"),
        (("industry", ChargingUnit.PER_CALL, 100), "purpose"),
        ((Purpose.INDUSTRY, "per_call", 100), "unit"),
    ],
)
def test_invalid_prices_name_the_field(arguments: tuple[object, ...], field: str) -> None:
    with pytest.raises(DomainValueError) as caught:
        Price(*arguments)  # type: ignore[arg-type]
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("prices", "field"),
    [
        (
            (
                Price(Purpose.INDUSTRY, ChargingUnit.PER_CALL, 50),
                Price(Purpose.PUBLIC_WELFARE, ChargingUnit.PER_CALL, 1),
            ),
            "prices[1].price_minor",
        ),
        (
            (
                Price(Purpose.INDUSTRY, ChargingUnit.PER_CALL, 0),
                Price(Purpose.PUBLIC_WELFARE, ChargingUnit.PER_CALL, 0),
            ),
            "prices[0].price_minor",
        ),
        (
            (
                Price(Purpose.INDUSTRY, ChargingUnit.PER_CALL, 50),
                Price(Purpose.PUBLIC_WELFARE, ChargingUnit.PER_CALL, 0),
                Price(Purpose.INDUSTRY, ChargingUnit.PER_CALL, 60),
            ),
            "prices[2].unit",
        ),
        (
            (
                Price(Purpose.INDUSTRY, ChargingUnit.PER_CALL, 50),
                Price(Purpose.PUBLIC_WELFARE, ChargingUnit.PER_CALL, 0),
                Price(Purpose.PUBLIC_GOVERNANCE, ChargingUnit.PER_CALL, 0),
            ),
            "prices[2].purpose",
        ),
        ((Price(Purpose.INDUSTRY, ChargingUnit.PER_CALL, 50),), "prices"),
        ((), "prices"),
        (("industry 50",), "prices[0]"),
    ],
)
def test_price_list_rules(
    make_product: MakeProduct, prices: tuple[object, ...], field: str
) -> None:
    with pytest.raises((DomainRuleError, DomainValueError)) as caught:
        make_product(prices=prices)
    assert caught.value.field == field


# --- listing ----------------------------------------------------------------------------------


def test_nothing_blocks_a_registered_covered_product(
    make_product: MakeProduct, make_authorization: MakeAuthorization
) -> None:
    blockers = listing_blockers(
        make_product(),
        make_authorization(),
        RegistrationState.REGISTERED,
        ON,
        source_grades=GENERAL_SOURCES,
    )
    assert blockers == []


def test_every_blocker_is_reported(
    make_product: MakeProduct, make_authorization: MakeAuthorization
) -> None:
    product = make_product(
        domain=DataDomain.HEALTH,
        title="全省门诊就诊统计",
        source_resource_codes=frozenset({resource(1), resource(7), resource(8)}),
    )
    authorization = suspend(make_authorization(operator_id="operator-other"), reason="整改")
    blockers = listing_blockers(
        product,
        authorization,
        RegistrationState.IN_NOTICE,
        date(2028, 1, 1),
        source_grades={resource(1): Grade.GENERAL, resource(8): Grade.CORE},
    )
    assert [blocker.reason for blocker in blockers] == [
        BlockerReason.NOT_REGISTERED,
        BlockerReason.OPERATOR_MISMATCH,
        BlockerReason.AUTHORIZATION_NOT_ACTIVE,
        BlockerReason.AUTHORIZATION_OUT_OF_TERM,
        BlockerReason.DOMAIN_OUTSIDE_SCOPE,
        BlockerReason.RESOURCE_NOT_COVERED,
        BlockerReason.RESOURCE_NOT_COVERED,
        BlockerReason.SOURCE_NOT_REGISTERED,
        BlockerReason.CORE_SOURCE,
    ]
    assert blockers[0].field == "registration"
    assert "in_notice" in blockers[0].message
    assert blockers[4].field == "domain"
    assert str(resource(7)) in blockers[7].message
    assert str(resource(8)) in blockers[8].message


def test_no_authorization_and_no_registration(make_product: MakeProduct) -> None:
    blockers = listing_blockers(make_product(), None, None, ON, source_grades=GENERAL_SOURCES)
    assert [(b.reason, b.field) for b in blockers] == [
        (BlockerReason.NOT_REGISTERED, "registration"),
        (BlockerReason.NO_AUTHORIZATION, "authorization"),
    ]
    assert "never applied for" in blockers[0].message


def test_scenario_scoped_authorization_needs_the_products_scenario(
    make_product: MakeProduct, make_authorization: MakeAuthorization
) -> None:
    authorization = make_authorization(
        scope=Scope(
            kind=ScopeKind.SCENARIO,
            domains=frozenset({DataDomain.METEOROLOGY}),
            scenarios=frozenset({"农业气象保险"}),
        )
    )
    unnamed = listing_blockers(
        make_product(),
        authorization,
        RegistrationState.REGISTERED,
        ON,
        source_grades=GENERAL_SOURCES,
    )
    assert [b.reason for b in unnamed] == [BlockerReason.SCENARIO_OUTSIDE_SCOPE]
    named = make_product(scenario="农业气象保险")
    assert (
        listing_blockers(
            named, authorization, RegistrationState.REGISTERED, ON, source_grades=GENERAL_SOURCES
        )
        == []
    )


def test_list_delist_and_relist(
    make_product: MakeProduct, make_authorization: MakeAuthorization
) -> None:
    authorization = make_authorization()
    listed = list_product(
        make_product(),
        authorization,
        RegistrationState.REGISTERED,
        ON,
        source_grades=GENERAL_SOURCES,
    )
    assert listed.state is ProductState.LISTED
    with pytest.raises(InvalidTransitionError) as caught:
        list_product(
            listed, authorization, RegistrationState.REGISTERED, ON, source_grades=GENERAL_SOURCES
        )
    assert caught.value.field == "state"
    delisted = delist(listed, reason="来源数据暂停更新")
    assert delisted.state is ProductState.DELISTED
    assert delisted.delisting_reason == "来源数据暂停更新"
    relisted = list_product(
        delisted, authorization, RegistrationState.REGISTERED, ON, source_grades=GENERAL_SOURCES
    )
    assert relisted.state is ProductState.LISTED
    assert relisted.delisting_reason == ""


def test_relisting_is_refused_once_the_authorization_is_revoked(
    make_product: MakeProduct, make_authorization: MakeAuthorization
) -> None:
    delisted = dataclasses.replace(
        make_product(), state=ProductState.DELISTED, delisting_reason="授权被撤销"
    )
    revoked = revoke(make_authorization(), reason="违规")
    with pytest.raises(ListingBlockedError) as caught:
        list_product(
            delisted, revoked, RegistrationState.REGISTERED, ON, source_grades=GENERAL_SOURCES
        )
    assert caught.value.field == "authorization.state"
    assert caught.value.code == "listing_blocked"
    assert [b.reason for b in caught.value.blockers] == [BlockerReason.AUTHORIZATION_NOT_ACTIVE]
    assert isinstance(caught.value, DomainRuleError)


def test_delisting_needs_a_listed_product_and_a_reason(make_product: MakeProduct) -> None:
    with pytest.raises(InvalidTransitionError):
        delist(make_product(), reason="下架")
    listed = dataclasses.replace(make_product(), state=ProductState.LISTED)
    with pytest.raises(DomainValueError) as caught:
        delist(listed, reason="  ")
    assert caught.value.field == "reason"
