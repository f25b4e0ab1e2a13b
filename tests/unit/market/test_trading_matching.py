"""The pure matching core: hard filters, BM25 ranking on Chinese text, explanations, both
directions, and incremental index maintenance."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from listings.domains import ChargingUnit, DataDomain, DeliveryForm, Grade, Purpose
from listings.product import Price
from market.errors import InvalidInputError
from market.trading.matching import (
    ALL_FILTERS,
    ELSEWHERE_WEIGHT,
    AreaFit,
    DemandMatcher,
    MatchFilter,
    ProductMatcher,
    exclusions,
    rarity,
)
from tests.unit.market.trading_examples import CATALOG, INDUSTRY_PER_CALL, demand, product

WELFARE_ONLY = {
    "permitted_purposes": frozenset({Purpose.PUBLIC_WELFARE}),
    "prices": (Price(Purpose.PUBLIC_WELFARE, ChargingUnit.PER_CALL, 0),),
}
EXCLUDED_BY = [
    pytest.param([MatchFilter.LISTING_ACTIVE], {"active": False}, id="delisted"),
    pytest.param(
        [MatchFilter.OPERATOR_AUTHORIZED], {"operator_authorized": False}, id="unauthorized"
    ),
    pytest.param([MatchFilter.DOMAIN], {"domain": DataDomain.TRANSPORT}, id="other-domain"),
    # A product has a price for each permitted purpose only, so it has none for this one either.
    pytest.param([MatchFilter.PURPOSE_PERMITTED, MatchFilter.PRICE], WELFARE_ONLY, id="purpose"),
    pytest.param([MatchFilter.DELIVERY_FORM], {"delivery_form": DeliveryForm.SANDBOX}, id="form"),
    pytest.param([MatchFilter.GRADE], {"grade": Grade.IMPORTANT}, id="grade"),
    pytest.param(
        [MatchFilter.PRICE],
        {"prices": (Price(Purpose.INDUSTRY, ChargingUnit.PER_CALL, 501),)},
        id="too-dear",
    ),
    pytest.param(
        [MatchFilter.PRICE],
        {"prices": (Price(Purpose.INDUSTRY, ChargingUnit.PER_PERIOD, 100),)},
        id="unit-not-budgeted",
    ),
]


@pytest.mark.parametrize(("failing", "product_changes"), EXCLUDED_BY)
def test_each_hard_filter_excludes_exactly_what_it_should(
    failing: list[MatchFilter], product_changes: dict[str, Any]
) -> None:
    asked = demand()
    excluded = product("p-excluded", **product_changes)
    matcher = ProductMatcher([excluded, product("p-fine")])

    assert [exclusion.filter for exclusion in exclusions(asked, excluded)] == failing
    assert [match.product_id for match in matcher.top_products(asked)] == ["p-fine"]
    explanation = matcher.explain(asked, "p-excluded")
    assert explanation is not None
    assert not explanation.is_match
    assert [exclusion.filter for exclusion in explanation.exclusions] == failing
    assert all(exclusion.reason for exclusion in explanation.exclusions)
    assert set(explanation.filters_passed) == set(ALL_FILTERS) - set(failing)


def test_important_data_reaches_a_buyer_cleared_for_it_and_core_clearance_changes_nothing() -> None:
    important = product(grade=Grade.IMPORTANT)
    assert exclusions(demand(grade_clearance=Grade.IMPORTANT), important) == ()
    assert exclusions(demand(grade_clearance=Grade.CORE), important) == ()


def test_price_fits_the_budget_of_its_unit_or_the_general_budget() -> None:
    priced = product(
        prices=(
            Price(Purpose.INDUSTRY, ChargingUnit.PER_CALL, 900),
            Price(Purpose.INDUSTRY, ChargingUnit.PER_PERIOD, 30_000),
        )
    )
    by_period = demand(unit_budgets_minor={ChargingUnit.PER_PERIOD: 30_000})
    general = demand(budget_minor_per_unit=1_000, unit_budgets_minor={})
    (match,) = ProductMatcher([priced]).top_products(by_period)
    assert match.price == Price(Purpose.INDUSTRY, ChargingUnit.PER_PERIOD, 30_000)
    (match,) = ProductMatcher([priced]).top_products(general)
    assert match.price == Price(Purpose.INDUSTRY, ChargingUnit.PER_CALL, 900)


def test_free_public_use_fits_a_zero_budget() -> None:
    free = product(
        prices=(INDUSTRY_PER_CALL, Price(Purpose.PUBLIC_WELFARE, ChargingUnit.PER_CALL, 0)),
        permitted_purposes=frozenset({Purpose.INDUSTRY, Purpose.PUBLIC_WELFARE}),
    )
    welfare = demand(purpose=Purpose.PUBLIC_WELFARE, unit_budgets_minor={}, budget_minor_per_unit=0)
    assert exclusions(welfare, free) == ()


def test_a_meteorology_demand_ranks_the_precipitation_forecast_first() -> None:
    matches = ProductMatcher(CATALOG).top_products(demand())
    assert matches[0].product_id == "p-rain"
    assert {"降水", "预报"} <= set(matches[0].matched_terms)
    assert matches[0].filters_passed == ALL_FILTERS
    assert [match.score for match in matches] == sorted(
        (match.score for match in matches), reverse=True
    )


def test_the_query_finds_the_product_its_words_describe_across_domains() -> None:
    asked = demand(
        title="台风走向和风圈数据",
        description="港口需要跟踪台风路径与风速。",
        domains=frozenset({DataDomain.METEOROLOGY, DataDomain.TRANSPORT}),
    )
    matches = ProductMatcher(CATALOG).top_products(asked, 1)
    assert [match.product_id for match in matches] == ["p-typhoon"]
    assert "台风" in matches[0].matched_terms


def test_a_product_sharing_no_term_is_not_a_match() -> None:
    asked = demand(
        title="公交客流", description="公交站点上下客人数", domains=frozenset(DataDomain)
    )
    matches = ProductMatcher(CATALOG).top_products(asked, 10)
    assert "p-bus" in [match.product_id for match in matches]
    assert "p-hospital" not in [match.product_id for match in matches]


def test_explanation_gives_the_score_top_products_gave() -> None:
    matcher = ProductMatcher(CATALOG)
    asked = demand()
    (best,) = matcher.top_products(asked, 1)
    explanation = matcher.explain(asked, best.product_id)
    assert explanation is not None
    assert explanation.is_match
    assert explanation.score == best.score
    assert explanation.matched_terms == best.matched_terms
    assert explanation.filters_passed == ALL_FILTERS
    assert matcher.explain(asked, "no-such-product") is None


def test_a_change_to_a_listing_is_seen_by_the_next_query() -> None:
    matcher = ProductMatcher(CATALOG)
    matcher.upsert(dataclasses.replace(CATALOG[0], active=False))
    assert "p-rain" not in [match.product_id for match in matcher.top_products(demand())]
    assert matcher.remove("p-typhoon")
    assert not matcher.remove("p-typhoon")
    assert "p-typhoon" not in matcher
    assert matcher.top_products(demand()) == []


def test_an_operator_sees_the_open_demands_its_products_serve_best_first() -> None:
    demands = DemandMatcher(
        [
            demand("d-rain"),
            demand("d-typhoon", title="台风路径数据", description="港口防台需要台风路径与风速"),
            demand(
                "d-bus",
                title="公交客流",
                description="公交站点客流",
                domains=frozenset({DataDomain.TRANSPORT}),
            ),
            demand("d-cheap", unit_budgets_minor={ChargingUnit.PER_CALL: 10}),
        ]
    )
    matches = demands.open_demands_for([CATALOG[0], CATALOG[1]], k=10)
    by_demand = {match.demand_id: match for match in matches}
    assert set(by_demand) == {"d-rain", "d-typhoon"}
    assert by_demand["d-rain"].product_id == "p-rain"
    assert by_demand["d-typhoon"].product_id == "p-typhoon"
    assert [match.score for match in matches] == sorted(
        (match.score for match in matches), reverse=True
    )
    delisted = dataclasses.replace(CATALOG[0], active=False)
    assert demands.open_demands_for([delisted]) == []
    assert demands.remove("d-rain")
    assert "d-rain" not in {match.demand_id for match in demands.open_demands_for([CATALOG[0]])}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"unit_budgets_minor": {ChargingUnit.PER_CALL: -1}}, "unit_budgets_minor.per_call"),
        ({"budget_minor_per_unit": -5}, "budget_minor_per_unit"),
        ({"unit_budgets_minor": {}}, "budget_minor_per_unit"),
        ({"domains": frozenset()}, "domains"),
        ({"domains": frozenset({"meteorology"})}, "domains"),
        ({"delivery_forms": frozenset()}, "delivery_forms"),
        ({"title": " "}, "title"),
    ],
)
def test_a_malformed_demand_is_refused_naming_the_field(
    changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidInputError) as raised:
        demand(**changes)
    assert raised.value.field == field


class _Side:
    """Term statistics of one side of the market, given outright."""

    def __init__(self, documents: int, frequencies: dict[str, int]) -> None:
        self._documents = documents
        self._frequencies = frequencies

    def __len__(self) -> int:
        return self._documents

    def document_frequency(self, term: str) -> int:
        return self._frequencies.get(term, 0)


def test_rarity_is_one_for_rare_terms_and_falls_as_more_of_the_asking_side_uses_a_term() -> None:
    side = _Side(100, {"单位": 90, "希望": 50, "拥堵": 3, "停车": 1})
    assert rarity("单位", None) == 1.0
    assert rarity("单位", _Side(0, {})) == 1.0
    assert rarity("停车", side) == 1.0
    assert rarity("没人用过", side) == 1.0
    assert 1.0 > rarity("拥堵", side) > rarity("希望", side) > rarity("单位", side) > 0.0


# Every demand introduces its buyer the same way; the subjects differ.
BUYER = "我们是政府部门的技术支撑单位,目前在做规划研究方面的工作"
DEMANDS = [
    demand(
        f"d-{subject}", title=f"征集{subject}相关数据", description=f"{BUYER},希望获得{subject}。"
    )
    for subject in ("降水预报", "台风路径", "空气质量", "道路拥堵", "停车泊位", "公交客流")
]


def test_words_every_demand_uses_weigh_less_than_the_subject() -> None:
    """A product that shares the buyers' self-introduction outranks the one on the subject by
    BM25 alone; weighted by rarity among the demands, words every demand uses weigh nothing
    (``bm25.MIN_TERM_WEIGHT``), and a product sharing nothing else is no match."""
    asked = DEMANDS[0]
    introduced = product(
        "p-introduced", title="技术支撑单位名录", description=f"{BUYER}名录,按季度更新。"
    )
    on_subject = product("p-rain")
    catalog = [introduced, on_subject]
    unweighted = ProductMatcher(catalog)
    weighted = ProductMatcher(catalog, demands=DemandMatcher(DEMANDS))

    assert [m.product_id for m in unweighted.top_products(asked)] == ["p-introduced", "p-rain"]
    assert [m.product_id for m in weighted.top_products(asked)] == ["p-rain"]
    explained = weighted.explain(asked, "p-introduced")
    assert explained is not None
    assert explained.score == 0
    assert not explained.is_match


def test_sellers_boilerplate_weighs_less_when_a_product_looks_for_demands() -> None:
    boilerplate = "采用隐私计算技术,确保个人信息安全,以接口调用方式交付。"
    products = ProductMatcher(
        product(f"p-{subject}", title=f"{subject}数据", description=f"提供{subject}。{boilerplate}")
        for subject in ("气温观测", "风速观测", "空气质量", "道路拥堵", "停车泊位", "公交客流")
    )
    looking = product("p-rain", description=f"提供逐小时降水预报。{boilerplate}")
    on_boilerplate = demand("d-secure", title="需要隐私计算安全交付的数据服务",
                            description="要求采用隐私计算技术,确保个人信息安全。")
    on_subject = demand("d-rain", title="需要降水预报", description="关注逐小时降水。")
    demands = [on_boilerplate, on_subject]

    assert [m.demand_id for m in DemandMatcher(demands).open_demands_for([looking])] == [
        "d-secure", "d-rain"]
    weighted = DemandMatcher(demands, products=products)
    assert [m.demand_id for m in weighted.open_demands_for([looking])] == ["d-rain"]


def _parking(product_id: str, area: str) -> Any:
    return product(
        product_id,
        title=f"{area}停车泊位实时接口",
        description=f"提供{area}公共停车场泊位占用与空余泊位数,覆盖{area}范围,每日更新。",
    )


PARKING_DEMAND = {
    "title": "需要停车泊位数据",
    "description": "做停车导航,希望获得韶关市停车场空余泊位数。",
    "domains": frozenset({DataDomain.METEOROLOGY}),
}


def test_a_product_covering_only_another_area_ranks_below_those_covering_the_asked_one() -> None:
    """Same data, three areas: the city asked for and the whole province cover the demand; a
    product of another city ranks below them, scaled by ``ELSEWHERE_WEIGHT``, and still comes
    when nothing better does."""
    catalog = [_parking("p-foshan", "佛山市"), _parking("p-shaoguan", "韶关市"),
               _parking("p-province", "全省")]  # fmt: skip
    matcher = ProductMatcher(catalog)
    asked = demand(**PARKING_DEMAND)
    matches = matcher.top_products(asked)

    assert [match.product_id for match in matches][-1] == "p-foshan"
    assert {match.product_id: match.area_fit for match in matches} == {
        "p-shaoguan": AreaFit.COVERED, "p-province": AreaFit.COVERED,
        "p-foshan": AreaFit.ELSEWHERE}  # fmt: skip
    # A demand naming no area ranks by text alone, where the Foshan product comes first.
    silent = demand(**{**PARKING_DEMAND, "description": "做停车导航,希望获得停车场空余泊位数。"})
    by_text = matcher.top_products(silent)
    assert by_text[0].product_id == "p-foshan"
    assert {match.area_fit for match in by_text} == {AreaFit.UNSTATED}
    foshan_only = ProductMatcher([catalog[0]])
    (alone,) = foshan_only.top_products(asked)
    assert alone.area_fit is AreaFit.ELSEWHERE
    assert alone.score == pytest.approx(
        ELSEWHERE_WEIGHT * foshan_only.top_products(silent)[0].score
    )


def test_the_explanation_names_the_area_fit_and_gives_the_scaled_score() -> None:
    matcher = ProductMatcher([_parking("p-foshan", "佛山市"), _parking("p-shaoguan", "韶关市")])
    asked = demand(**PARKING_DEMAND)
    ranked = {match.product_id: match for match in matcher.top_products(asked)}
    for product_id, match in ranked.items():
        explanation = matcher.explain(asked, product_id)
        assert explanation is not None
        assert explanation.area_fit is match.area_fit
        assert explanation.score == match.score


def test_an_operator_sees_first_the_demands_asking_for_the_area_its_product_covers() -> None:
    wanting = {
        area: demand(f"d-{area}", title="需要停车泊位数据",
                     description=f"做停车导航,希望获得{area}停车场空余泊位数。")
        for area in ("韶关市", "佛山市")
    }  # fmt: skip
    matches = DemandMatcher(wanting.values()).open_demands_for([_parking("p-foshan", "佛山市")])
    assert [(match.demand_id, match.area_fit) for match in matches] == [
        ("d-佛山市", AreaFit.COVERED), ("d-韶关市", AreaFit.ELSEWHERE)]  # fmt: skip
