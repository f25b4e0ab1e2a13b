"""Controlled vocabularies of the public data exchange, with their Chinese labels.

Each vocabulary is a ``StrEnum`` whose value is the stable wire/storage form (snake_case ASCII)
and whose ``label`` is the Chinese term used in disclosures and the catalog. Values coming from
outside (HTTP bodies, peer exchanges, database rows) enter through ``from_wire``, which raises a
``DomainValueError`` naming the field instead of a bare ``ValueError``.

Sources of the terms: MISSION §1 (authorization scope: whole / by domain / by scenario),
§2 (registration subjects and data), §3 (grades), §4 (delivery forms, update frequency) and §6
(purposes and fee units: 有条件无偿 for public governance and welfare, 有条件有偿 for industry).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Self, cast

from listings.errors import DomainValueError


class Vocabulary(StrEnum):
    """A StrEnum whose members are declared as ``NAME = "wire_value", "中文标签"``."""

    label: str

    def __new__(cls, value: str, label: str) -> Self:
        member = str.__new__(cls, value)
        member._value_ = value
        member.label = label
        return member

    @classmethod
    def from_wire(cls, value: object, field: str) -> Self:
        """The member whose wire value is exactly ``value``; ``DomainValueError(field)`` if none.

        Matching is exact (no case folding): wire values are machine-written, and accepting
        near-misses would let two spellings of one value reach storage.
        """
        if isinstance(value, str):
            # The enum's own table of members by value: an exact match, in one dict read.
            member = cls._value2member_map_.get(value)
            if member is not None:
                return cast("Self", member)
        allowed = ", ".join(member.value for member in cls)
        raise DomainValueError(field, f"unknown value {value!r}; expected one of: {allowed}")


class DataDomain(Vocabulary):
    """Data domain (数据领域) used for authorization scope, registration and the catalog."""

    METEOROLOGY = "meteorology", "气象"
    TRANSPORT = "transport", "交通"
    HEALTH = "health", "医疗健康"
    FINANCE = "finance", "金融"
    SPATIAL_GEOGRAPHY = "spatial_geography", "空间地理"
    CULTURE_TOURISM = "culture_tourism", "文化旅游"
    CULTURAL_RELICS = "cultural_relics", "文物"
    AGRICULTURE = "agriculture", "农业"
    EDUCATION = "education", "教育"
    ENERGY = "energy", "能源"
    ENVIRONMENT = "environment", "生态环境"
    MARKET_REGULATION = "market_regulation", "市场监管"
    EMPLOYMENT = "employment", "就业社保"
    URBAN_GOVERNANCE = "urban_governance", "城市治理"
    CREDIT = "credit", "信用"
    NATURAL_RESOURCES = "natural_resources", "自然资源"
    WATER_CONSERVANCY = "water_conservancy", "水利"
    EMERGENCY_MANAGEMENT = "emergency_management", "应急管理"
    COMMERCE = "commerce", "商贸流通"
    SCIENCE_TECHNOLOGY = "science_technology", "科技创新"


class DeliveryForm(Vocabulary):
    """How a product reaches the buyer (MISSION §4); raw data never leaves the domain (§1)."""

    FILE = "file", "数据文件"
    TABLE = "table", "数据库表"
    API = "api", "数据接口"
    SANDBOX = "sandbox", "数据沙箱"
    REPORT = "report", "数据报告"


class Grade(Vocabulary):
    """Classification grade (分类分级, MISSION §3), ordered from least to most protected."""

    GENERAL = "general", "一般数据"
    IMPORTANT = "important", "重要数据"
    CORE = "core", "核心数据"

    @property
    def rank(self) -> int:
        """0 for general, 1 for important, 2 for core: higher means more protected."""
        return list(Grade).index(self)


class Purpose(Vocabulary):
    """Purpose of use, which decides whether use is free or paid (MISSION §6)."""

    PUBLIC_GOVERNANCE = "public_governance", "公共治理"
    PUBLIC_WELFARE = "public_welfare", "公益事业"
    INDUSTRY = "industry", "产业发展"

    @property
    def is_conditionally_free(self) -> bool:
        """Public governance and public welfare use is free under conditions (有条件无偿)."""
        return self in {Purpose.PUBLIC_GOVERNANCE, Purpose.PUBLIC_WELFARE}


class ChargingUnit(Vocabulary):
    """What one price covers (MISSION §6: per product, per call, per period or per volume)."""

    PER_PRODUCT = "per_product", "按产品"
    PER_CALL = "per_call", "按次调用"
    PER_PERIOD = "per_period", "按时段"
    PER_VOLUME = "per_volume", "按数据量"


class UpdateCycle(Vocabulary):
    """How often the data behind a resource or product is refreshed (更新频率)."""

    REALTIME = "realtime", "实时"
    DAILY = "daily", "每日"
    WEEKLY = "weekly", "每周"
    MONTHLY = "monthly", "每月"
    QUARTERLY = "quarterly", "每季度"
    YEARLY = "yearly", "每年"
    ONCE = "once", "一次性"


class SubjectKind(Vocabulary):
    """What a registration is about (登记对象): a data resource, product or service."""

    RESOURCE = "resource", "数据资源"
    PRODUCT = "product", "数据产品"
    SERVICE = "service", "数据服务"

    @property
    def code_letter(self) -> str:
        """The one-letter kind used inside a unified registration code (see ``listings.codes``)."""
        return self.value[0].upper()


class ScopeKind(Vocabulary):
    """Kind of authorization scope (授权范围, MISSION §1)."""

    WHOLE = "whole", "整体授权"
    DOMAIN = "domain", "分领域授权"
    SCENARIO = "scenario", "依场景授权"
