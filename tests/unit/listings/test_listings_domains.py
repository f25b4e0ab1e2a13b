from __future__ import annotations

import re

import pytest

from listings.domains import (
    ChargingUnit,
    DataDomain,
    DeliveryForm,
    Grade,
    Purpose,
    ScopeKind,
    SubjectKind,
    UpdateCycle,
    Vocabulary,
)
from listings.errors import DomainValueError

VOCABULARIES: list[type[Vocabulary]] = [
    DataDomain,
    DeliveryForm,
    Grade,
    Purpose,
    ChargingUnit,
    UpdateCycle,
    SubjectKind,
    ScopeKind,
]
HAN = re.compile(r"[\u4e00-\u9fff]")


@pytest.mark.parametrize("vocabulary", VOCABULARIES)
def test_every_member_has_a_snake_case_value_and_a_chinese_label(
    vocabulary: type[Vocabulary],
) -> None:
    for member in vocabulary:
        assert re.fullmatch(r"[a-z][a-z_]*", member.value)
        assert HAN.search(member.label), member
    assert len({member.label for member in vocabulary}) == len(vocabulary)


@pytest.mark.parametrize(
    ("value", "label"),
    [
        ("meteorology", "气象"),
        ("transport", "交通"),
        ("health", "医疗健康"),
        ("finance", "金融"),
        ("spatial_geography", "空间地理"),
        ("culture_tourism", "文化旅游"),
        ("cultural_relics", "文物"),
        ("agriculture", "农业"),
        ("education", "教育"),
        ("energy", "能源"),
        ("environment", "生态环境"),
        ("market_regulation", "市场监管"),
        ("employment", "就业社保"),
        ("urban_governance", "城市治理"),
    ],
)
def test_required_data_domains_and_labels(value: str, label: str) -> None:
    assert DataDomain.from_wire(value, "domain").label == label


def test_closed_vocabularies_are_exactly_the_policy_terms() -> None:
    assert [form.value for form in DeliveryForm] == ["file", "table", "api", "sandbox", "report"]
    assert [grade.label for grade in Grade] == ["一般数据", "重要数据", "核心数据"]
    assert [unit.value for unit in ChargingUnit] == [
        "per_product",
        "per_call",
        "per_period",
        "per_volume",
    ]
    assert [cycle.value for cycle in UpdateCycle] == [
        "realtime",
        "daily",
        "weekly",
        "monthly",
        "quarterly",
        "yearly",
        "once",
    ]
    assert [kind.value for kind in ScopeKind] == ["whole", "domain", "scenario"]


def test_from_wire_returns_the_member_which_is_also_its_string() -> None:
    purpose = Purpose.from_wire("industry", "purpose")
    assert purpose is Purpose.INDUSTRY
    assert isinstance(purpose, str)
    assert purpose.value == "industry"
    assert f"{purpose}" == "industry"


@pytest.mark.parametrize("raw", ["weather", "Meteorology", " meteorology", "", None, 3])
def test_from_wire_refuses_unknown_values_naming_the_field(raw: object) -> None:
    with pytest.raises(DomainValueError) as caught:
        DataDomain.from_wire(raw, "demand.domain")
    assert caught.value.field == "demand.domain"
    assert caught.value.code == "invalid_value"
    assert "meteorology" in caught.value.message  # the allowed values are listed


def test_only_public_governance_and_welfare_are_conditionally_free() -> None:
    assert Purpose.PUBLIC_GOVERNANCE.is_conditionally_free
    assert Purpose.PUBLIC_WELFARE.is_conditionally_free
    assert not Purpose.INDUSTRY.is_conditionally_free


def test_grades_rank_from_general_to_core() -> None:
    assert Grade.GENERAL.rank < Grade.IMPORTANT.rank < Grade.CORE.rank


def test_subject_kinds_have_distinct_code_letters() -> None:
    assert [kind.code_letter for kind in SubjectKind] == ["R", "P", "S"]
