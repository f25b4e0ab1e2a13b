"""Hand-made listings and demands in Chinese for the matching tests: a valid pair that passes
every hard filter, and a small catalog of clearly distinct products."""

from __future__ import annotations

from datetime import date
from typing import Any

from listings.domains import ChargingUnit, DataDomain, DeliveryForm, Grade, Purpose
from listings.product import Price
from market.trading.matching import Demand, ListedProduct

INDUSTRY_PER_CALL = Price(Purpose.INDUSTRY, ChargingUnit.PER_CALL, 200)


def product(product_id: str = "p-rain", **overrides: Any) -> ListedProduct:
    values: dict[str, Any] = {
        "product_id": product_id,
        "operator_id": "op-1",
        "title": "逐小时降水预报接口",
        "description": "提供全省未来72小时逐小时降水预报、降水概率和强对流天气预警。",
        "domain": DataDomain.METEOROLOGY,
        "delivery_form": DeliveryForm.API,
        "grade": Grade.GENERAL,
        "prices": (INDUSTRY_PER_CALL,),
        "permitted_purposes": frozenset({Purpose.INDUSTRY}),
        "registration_code": None,
        "active": True,
        "operator_authorized": True,
    }
    values.update(overrides)
    return ListedProduct(**values)


def demand(demand_id: str = "d-1", **overrides: Any) -> Demand:
    values: dict[str, Any] = {
        "demand_id": demand_id,
        "buyer_org_id": "buyer-1",
        "title": "需要气象降水预报",
        "description": "物流企业安排车辆调度,关注未来几天的降水和强对流天气。",
        "domains": frozenset({DataDomain.METEOROLOGY}),
        "purpose": Purpose.INDUSTRY,
        "budget_minor_per_unit": None,
        "unit_budgets_minor": {ChargingUnit.PER_CALL: 500},
        "delivery_forms": frozenset({DeliveryForm.API, DeliveryForm.FILE}),
        "grade_clearance": Grade.GENERAL,
        "deadline": date(2027, 1, 31),
    }
    values.update(overrides)
    return Demand(**values)


CATALOG = [
    product("p-rain"),
    product(
        "p-typhoon",
        title="台风路径实时监测数据",
        description="台风中心位置、最大风速、七级风圈半径与预报路径,服务港口和渔业。",
    ),
    product(
        "p-bus",
        title="公交线路客流统计",
        description="分线路分站点的公交上下客人数与早晚高峰客流。",
        domain=DataDomain.TRANSPORT,
    ),
    product(
        "p-hospital",
        title="医疗机构床位资源数据集",
        description="全省医院等级、科室设置与床位数。",
        domain=DataDomain.HEALTH,
        delivery_form=DeliveryForm.FILE,
    ),
]
