"""Factories that build valid listings objects; each test overrides only what it is about."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest

from listings.authorization import Authorization, Scope, Term
from listings.codes import UnifiedCode
from listings.domains import (
    ChargingUnit,
    DataDomain,
    DeliveryForm,
    Grade,
    Purpose,
    ScopeKind,
    SubjectKind,
    UpdateCycle,
)
from listings.product import Price, Product, QualityIndicators
from listings.registration import RegistrationData

OPERATOR = "operator-7"
TODAY = date(2025, 3, 1)


def resource_code(serial: int) -> UnifiedCode:
    return UnifiedCode(issuer="GZDEX", kind=SubjectKind.RESOURCE, year=2024, serial=serial)


def product_code(serial: int) -> UnifiedCode:
    return UnifiedCode(issuer="GZDEX", kind=SubjectKind.PRODUCT, year=2025, serial=serial)


@pytest.fixture
def make_authorization() -> Callable[..., Authorization]:
    def build(**overrides: Any) -> Authorization:
        fields: dict[str, Any] = {
            "operator_id": OPERATOR,
            "scope": Scope(
                kind=ScopeKind.DOMAIN,
                domains=frozenset({DataDomain.METEOROLOGY, DataDomain.TRANSPORT}),
            ),
            "resource_codes": frozenset({resource_code(1), resource_code(2)}),
            "term": Term(start=date(2025, 1, 1), end=date(2027, 12, 31)),
            "conditions": "仅限在数据沙箱内加工,不得对外提供原始数据。",
        }
        fields.update(overrides)
        return Authorization(**fields)

    return build


@pytest.fixture
def make_registration_data() -> Callable[..., RegistrationData]:
    def build(**overrides: Any) -> RegistrationData:
        fields: dict[str, Any] = {
            "subject_kind": SubjectKind.PRODUCT,
            "holder": "某省公共数据运营有限公司",
            "title": "全省逐小时气象观测数据产品",
            "description": "基于全省自动气象站观测数据加工的逐小时气温、降水、风速产品。",
            "data_source": "省气象局自动气象站观测数据(登记编码见来源资源)",
            "domain": DataDomain.METEOROLOGY,
            "update_cycle": UpdateCycle.DAILY,
            "permitted_purposes": frozenset({Purpose.INDUSTRY, Purpose.PUBLIC_WELFARE}),
            "security_measures": "数据脱敏、访问审计、数字水印",
            "grade": Grade.GENERAL,
        }
        fields.update(overrides)
        return RegistrationData(**fields)

    return build


@pytest.fixture
def make_product() -> Callable[..., Product]:
    def build(**overrides: Any) -> Product:
        fields: dict[str, Any] = {
            "operator_id": OPERATOR,
            "title": "全省逐小时气象观测数据",
            "description": "全省自动气象站逐小时气温、降水和风速观测,经质量控制后按日更新。",
            "domain": DataDomain.METEOROLOGY,
            "source_resource_codes": frozenset({resource_code(1)}),
            "delivery_form": DeliveryForm.API,
            "update_cycle": UpdateCycle.DAILY,
            "grade": Grade.GENERAL,
            "quality": QualityIndicators(
                completeness=95,
                accuracy=90,
                timeliness=88,
                usability=80,
                machine_readability=100,
            ),
            "permitted_purposes": frozenset({Purpose.INDUSTRY, Purpose.PUBLIC_WELFARE}),
            "prices": (
                Price(Purpose.INDUSTRY, ChargingUnit.PER_CALL, 50),
                Price(Purpose.INDUSTRY, ChargingUnit.PER_PERIOD, 1_200_000),
                Price(Purpose.PUBLIC_WELFARE, ChargingUnit.PER_CALL, 0),
            ),
        }
        fields.update(overrides)
        return Product(**fields)

    return build
