"""Matching demand to listed products (供需对接, MISSION §5): hard filters, then BM25 relevance.

The core is pure: it works on plain values (``ListedProduct``, ``Demand``) that the services
fill from the database, and keeps its indexes in memory. Two directions, one machinery:

* ``ProductMatcher.top_products(demand, k)``: a buyer's demand against the listed products;
* ``DemandMatcher.open_demands_for(products, k)``: the open demands an operator's listed
  products could serve.

A pair (demand, product) is a match only if it passes every hard filter (``MatchFilter``) and
shares at least one search term; matches are ranked by Okapi BM25 (see ``market.trading.bm25``)
over ``listings.text.tokens`` (jieba search mode), the title counting ``TITLE_BOOST`` times, and
a product that covers another area than the one the demand asks for (``AreaFit``) ranks below
an equally relevant one that covers it.
The domain and delivery-form filters are applied by the index itself (postings are partitioned
by domain and form, so a query reads only what the demand accepts); the other
filters are asked about candidates in rank order, which gives the result of filtering first
while evaluating them on a few candidates instead of the whole catalog.

Both indexes are built once and kept up to date one change at a time (``upsert``/``remove``),
so a listing or a demand that changes costs one document's re-indexing, not a rebuild.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Protocol

from listings.areas import Area, areas_named, covers_any
from listings.domains import ChargingUnit, DataDomain, DeliveryForm, Grade, Purpose, Vocabulary
from listings.product import Price, buyer_may_receive
from listings.text import GENERIC_QUERY_TERMS, tokens
from market.errors import InvalidInputError
from market.trading.bm25 import DEFAULT_B, DEFAULT_K1, Bm25Index, Hit, idf

DEFAULT_K = 10
# Tuned on a development set drawn with another seed than bench/data/matching (see its README),
# so that the committed set's figures are not fitted to it.
# A title names what is offered or wanted, the description also carries boilerplate (update
# cycle, delivery, security measures): a title occurrence counts as three in the document.
TITLE_BOOST = 3
# jieba's search mode yields a long word and the dictionary words inside it (广州市 → 广州,
# 州市, 广州市). In a query that counts one word up to three times, so a term that is part of
# another term of the same query weighs half. The index keeps every part, so a query for 医疗
# still finds 医疗健康.
SUBTERM_QUERY_WEIGHT = 0.5
# Pseudo-relevance feedback (Rocchio 1971; RM3 in Lavrenko & Croft 2001): buyers and sellers
# name the same data differently (堵车 / 拥堵, 养猪 / 生猪存栏), so the terms that characterise
# the best first-round products are added to the query and it is run once more. On the
# development set this lifted recall@10 from 0.827 to 0.885 (bench/data/matching/README.md).
# With query terms weighted by rarity the first round is cleaner, and its best five products
# (rather than ten) gave the best expansion on all three development sets.
FEEDBACK_DOCUMENTS = 5
FEEDBACK_TERMS = 10
FEEDBACK_WEIGHT = 0.5
# A product covering only other areas than the demand names (佛山市 for 韶关市) is worth less to
# the buyer, but may still be the best there is: its score is scaled down rather than filtered
# out. Tuned on the development sets (0.4–0.8 tried; 0.6 best on all three).
ELSEWHERE_WEIGHT = 0.6


class MatchFilter(Vocabulary):
    """The hard filters, in the order they are checked (cheapest and most selective first)."""

    LISTING_ACTIVE = "listing_active", "产品在架"
    OPERATOR_AUTHORIZED = "operator_authorized", "运营机构授权有效"
    DOMAIN = "domain_wanted", "领域符合需求"
    PURPOSE_PERMITTED = "purpose_permitted", "用途在许可范围内"
    DELIVERY_FORM = "delivery_form_accepted", "交付方式可接受"
    GRADE = "grade_cleared", "分级在需求方许可范围内"
    PRICE = "price_within_budget", "价格在预算内"


class AreaFit(Vocabulary):
    """Whether a product's area covers the area a demand asks for, as both texts name them
    (``listings.areas``)."""

    COVERED = "covered", "覆盖需求地区"
    ELSEWHERE = "elsewhere", "仅覆盖其他地区"
    UNSTATED = "unstated", "未注明地区"

    @property
    def weight(self) -> float:
        """The factor a product's score is ranked by."""
        return ELSEWHERE_WEIGHT if self is AreaFit.ELSEWHERE else 1.0


def area_fit(offered: frozenset[Area], wanted: frozenset[Area]) -> AreaFit:
    """How the areas a product's text names fit those a demand's text names; ``UNSTATED`` when
    either names none (a product silent on its area may cover anywhere, a demand silent on
    it takes any)."""
    if not offered or not wanted:
        return AreaFit.UNSTATED
    return AreaFit.COVERED if covers_any(offered, wanted) else AreaFit.ELSEWHERE


def _require_text(field_name: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError("must be non-empty text", field=field_name)
    return value


def _require_members(field_name: str, values: object, kind: type) -> frozenset[object]:
    members = frozenset(values) if isinstance(values, Iterable) else None
    if not members:
        raise InvalidInputError(f"must list at least one {kind.__name__}", field=field_name)
    if not all(isinstance(member, kind) for member in members):
        raise InvalidInputError(f"every entry must be a {kind.__name__}", field=field_name)
    return members


def _require_amount(field_name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInputError("must be a whole number of fen, 0 or more", field=field_name)


@dataclass(frozen=True)
class ListedProduct:
    """What matching needs to know of a product; ``active`` means listed now, and
    ``operator_authorized`` that the operator's authorization is in force and covers it."""

    product_id: str
    operator_id: str
    title: str
    description: str
    domain: DataDomain
    delivery_form: DeliveryForm
    grade: Grade
    prices: tuple[Price, ...]
    permitted_purposes: frozenset[Purpose]
    registration_code: str | None
    active: bool
    operator_authorized: bool

    def __post_init__(self) -> None:
        _require_text("product_id", self.product_id)
        _require_text("operator_id", self.operator_id)
        _require_text("title", self.title)
        if not isinstance(self.domain, DataDomain):
            raise InvalidInputError(f"{self.domain!r} is not a data domain", field="domain")
        if not isinstance(self.delivery_form, DeliveryForm):
            raise InvalidInputError("not a delivery form", field="delivery_form")
        if not isinstance(self.grade, Grade):
            raise InvalidInputError("not a grade", field="grade")
        object.__setattr__(self, "prices", tuple(self.prices))
        if not all(isinstance(price, Price) for price in self.prices):
            raise InvalidInputError("every entry must be a Price", field="prices")
        object.__setattr__(
            self,
            "permitted_purposes",
            _require_members("permitted_purposes", self.permitted_purposes, Purpose),
        )


@dataclass(frozen=True)
class Demand:
    """A buyer's open demand (需求), as matching sees it.

    Budget: ``unit_budgets_minor`` gives the most the buyer pays per charging unit, in fen, for
    the units it names; ``budget_minor_per_unit`` applies to every other unit (``None``: only
    the named units are acceptable). Public-governance and public-welfare use is free
    (有条件无偿), so for those purposes any budget, even 0, fits.
    """

    demand_id: str
    buyer_org_id: str
    title: str
    description: str
    domains: frozenset[DataDomain]
    purpose: Purpose
    budget_minor_per_unit: int | None
    delivery_forms: frozenset[DeliveryForm]
    grade_clearance: Grade
    deadline: date
    unit_budgets_minor: Mapping[ChargingUnit, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _require_text("demand_id", self.demand_id)
        _require_text("buyer_org_id", self.buyer_org_id)
        _require_text("title", self.title)
        object.__setattr__(self, "domains", _require_members("domains", self.domains, DataDomain))
        object.__setattr__(
            self,
            "delivery_forms",
            _require_members("delivery_forms", self.delivery_forms, DeliveryForm),
        )
        if not isinstance(self.purpose, Purpose):
            raise InvalidInputError("not a purpose", field="purpose")
        if not isinstance(self.grade_clearance, Grade):
            raise InvalidInputError("not a grade", field="grade_clearance")
        if self.budget_minor_per_unit is not None:
            _require_amount("budget_minor_per_unit", self.budget_minor_per_unit)
        budgets = dict(self.unit_budgets_minor)
        for unit, amount in budgets.items():
            if not isinstance(unit, ChargingUnit):
                raise InvalidInputError("keys must be charging units", field="unit_budgets_minor")
            _require_amount(f"unit_budgets_minor.{unit.value}", amount)
        if self.budget_minor_per_unit is None and not budgets:
            raise InvalidInputError(
                "a budget is required (per unit, or for named units)",
                field="budget_minor_per_unit",
            )
        object.__setattr__(self, "unit_budgets_minor", budgets)

    def __hash__(self) -> int:
        # The budget mapping is not hashable; the id identifies a demand.
        return hash(self.demand_id)

    def budget_for(self, unit: ChargingUnit) -> int | None:
        """The most this buyer pays per ``unit`` in fen; ``None`` if the unit is unacceptable."""
        return self.unit_budgets_minor.get(unit, self.budget_minor_per_unit)


@dataclass(frozen=True)
class Exclusion:
    """Why a pair failed one hard filter."""

    filter: MatchFilter
    reason: str


@dataclass(frozen=True)
class Match:
    """A product that answers a demand: the score is BM25 in the direction it was asked
    (demand text against products, or product text against demands) times the area fit's
    weight; ``matched_terms`` are terms of the asking text found in the other,
    ``feedback_terms`` the terms added by pseudo-relevance feedback that it also contains;
    ``price`` is the cheapest list price that fits the budget for the demand's purpose."""

    demand_id: str
    product_id: str
    score: float
    matched_terms: tuple[str, ...]
    feedback_terms: tuple[str, ...]
    filters_passed: tuple[MatchFilter, ...]
    area_fit: AreaFit
    price: Price


@dataclass(frozen=True)
class Explanation:
    """Diagnostics for one pair: every filter passed or failed, the text relevance and the
    area fit."""

    demand_id: str
    product_id: str
    filters_passed: tuple[MatchFilter, ...]
    exclusions: tuple[Exclusion, ...]
    score: float
    matched_terms: tuple[str, ...]
    area_fit: AreaFit

    @property
    def is_match(self) -> bool:
        return not self.exclusions and self.score > 0


def fitting_price(demand: Demand, product: ListedProduct) -> Price | None:
    """The cheapest price of ``product`` for the demand's purpose within its budget."""
    fitting = [
        price
        for price in product.prices
        if price.purpose is demand.purpose
        and (budget := demand.budget_for(price.unit)) is not None
        and price.price_minor <= budget
    ]
    return min(fitting, key=lambda price: (price.price_minor, price.unit.value), default=None)


def _listing_active(_demand: Demand, product: ListedProduct) -> str | None:
    return None if product.active else "the product is not listed"


def _operator_authorized(_demand: Demand, product: ListedProduct) -> str | None:
    if product.operator_authorized:
        return None
    return "the operator's authorization is not in force for this product"


def _domain(demand: Demand, product: ListedProduct) -> str | None:
    if product.domain in demand.domains:
        return None
    return f"domain {product.domain.value} ({product.domain.label}) is not one the demand names"


def _purpose(demand: Demand, product: ListedProduct) -> str | None:
    if demand.purpose in product.permitted_purposes:
        return None
    return f"use for {demand.purpose.value} ({demand.purpose.label}) is not permitted"


def _delivery_form(demand: Demand, product: ListedProduct) -> str | None:
    if product.delivery_form in demand.delivery_forms:
        return None
    form = product.delivery_form
    return f"delivery form {form.value} ({form.label}) is not acceptable to the buyer"


def _grade(demand: Demand, product: ListedProduct) -> str | None:
    if buyer_may_receive(product.grade, demand.grade_clearance):
        return None
    return (
        f"{product.grade.value} data needs a clearance the buyer lacks "
        f"({demand.grade_clearance.value})"
    )


def _price(demand: Demand, product: ListedProduct) -> str | None:
    if fitting_price(demand, product) is not None:
        return None
    return f"no price for {demand.purpose.value} within the buyer's budget"


FILTERS: tuple[tuple[MatchFilter, Callable[[Demand, ListedProduct], str | None]], ...] = (
    (MatchFilter.LISTING_ACTIVE, _listing_active),
    (MatchFilter.OPERATOR_AUTHORIZED, _operator_authorized),
    (MatchFilter.DOMAIN, _domain),
    (MatchFilter.PURPOSE_PERMITTED, _purpose),
    (MatchFilter.DELIVERY_FORM, _delivery_form),
    (MatchFilter.GRADE, _grade),
    (MatchFilter.PRICE, _price),
)
ALL_FILTERS = tuple(name for name, _check in FILTERS)


def exclusions(demand: Demand, product: ListedProduct) -> tuple[Exclusion, ...]:
    """Every hard filter the pair fails, with the reason (empty: it passes them all)."""
    return tuple(
        Exclusion(name, reason)
        for name, check in FILTERS
        if (reason := check(demand, product)) is not None
    )


def passes_filters(demand: Demand, product: ListedProduct) -> bool:
    """Whether the pair passes every hard filter; stops at the first failure."""
    return all(check(demand, product) is None for _name, check in FILTERS)


class TermStatistics(Protocol):
    """How many texts of one side of the market (demands, or products) use a term."""

    def __len__(self) -> int: ...

    def document_frequency(self, term: str) -> int: ...


def rarity(term: str, asking_side: TermStatistics | None) -> float:
    """How rare ``term`` is among the texts of the side that asks: its BM25 idf there relative
    to a term only one text uses, so 1 for a rare term and towards 0 for one every text uses
    (1 when the side's texts are not known, or for a term none of them uses)."""
    if asking_side is None:
        return 1.0
    documents = len(asking_side)
    frequency = asking_side.document_frequency(term)
    if frequency <= 1:
        return 1.0
    return idf(frequency, documents) / idf(1, documents)


def _weighted_query(
    title: str, description: str, asking_side: TermStatistics | None
) -> list[tuple[str, float]]:
    """Distinct terms of a text used as a query, with their query weights: 1, or
    ``SUBTERM_QUERY_WEIGHT`` for a part of a longer term, times the term's ``rarity`` on the
    asking side. Generic words (数据, 信息) are dropped unless nothing else is left, as
    ``listings.text.query_terms`` does.

    The rarity factor is query-side idf. Buyers write in a shared register (我司是一家……, 目前在做
    ……方面的工作, 希望获得……的相关资料, 接受文件下载): words most demands use say nothing of
    the data wanted, yet a product that happens to use one (单位 in 重点排污单位) scored on it
    as much as on the subject. Sellers' boilerplate weighs the same way when a product looks
    for demands. On the development sets it lifted recall@10 by 0.006 to 0.028
    (bench/data/matching/README.md)."""
    distinct = list(dict.fromkeys([*tokens(title), *tokens(description)]))
    specific = [term for term in distinct if term not in GENERIC_QUERY_TERMS] or distinct
    return [
        (
            term,
            (
                SUBTERM_QUERY_WEIGHT
                if any(term != other and term in other for other in specific)
                else 1.0
            )
            * rarity(term, asking_side),
        )
        for term in specific
    ]


def _feedback(
    index: Bm25Index[str, Shelf],
    query: list[tuple[str, float]],
    first_round: Sequence[Hit[str]],
) -> list[tuple[str, float]]:
    """Expansion terms from the best accepted first-round hits, weighted for the query."""
    feedback = index.feedback_terms(
        first_round[:FEEDBACK_DOCUMENTS],
        FEEDBACK_TERMS,
        exclude=[term for term, _weight in query],
    )
    return [(term, weight * FEEDBACK_WEIGHT) for term, weight in feedback]


def _ranked(
    index: Bm25Index[str, Shelf],
    query: list[tuple[str, float]],
    partitions: Sequence[Shelf],
    k: int,
    *,
    accept: Callable[[str], bool],
    prior: Callable[[str], float],
) -> tuple[list[Hit[str]], list[tuple[str, float]]]:
    """The best ``k`` accepted hits, their scores scaled by ``prior``, after one round of
    pseudo-relevance feedback, and the expansion terms. The second round only adds the
    expansion terms to the first round's sums, which is the same as running the expanded query
    afresh. The feedback reads the first round's best by text alone: scaled there too, the
    expansion narrowed to one area's products and recall fell (bench/data/matching/README.md)."""
    scores = index.scores(query, partitions)
    first_round = index.top(scores, FEEDBACK_DOCUMENTS, accept)
    expansion = _feedback(index, query, first_round)
    index.add_terms(scores, expansion)
    return index.top(scores, k, accept, prior), expansion


# The index partition ("shelf") of a product: its domain and delivery form, both hard filters,
# so a demand reads only the postings of the domains and forms it accepts.
Shelf = tuple[DataDomain, DeliveryForm]


def _shelf(product: ListedProduct) -> Shelf:
    return (product.domain, product.delivery_form)


def _shelves(demand: Demand) -> list[Shelf]:
    return sorted((domain, form) for domain in demand.domains for form in demand.delivery_forms)


def _new_index() -> Bm25Index[str, Shelf]:
    return Bm25Index(k1=DEFAULT_K1, b=DEFAULT_B, title_boost=TITLE_BOOST)


def _match(
    demand: Demand,
    product: ListedProduct,
    hit: Hit[str],
    expansion: list[tuple[str, float]],
    fit: AreaFit,
) -> Match:
    added = {term for term, _weight in expansion}
    price = fitting_price(demand, product)
    if price is None:  # pragma: no cover - the price filter admitted the pair
        raise AssertionError("a matched pair has a fitting price")
    return Match(
        demand_id=demand.demand_id,
        product_id=product.product_id,
        score=hit.score,
        matched_terms=tuple(term for term in hit.matched_terms if term not in added),
        feedback_terms=tuple(term for term in hit.matched_terms if term in added),
        filters_passed=ALL_FILTERS,
        area_fit=fit,
        price=price,
    )


def _text_areas(title: str, description: str) -> frozenset[Area]:
    return areas_named(f"{title}\n{description}")


class _AreasByText:
    """The areas each indexed text names, read once when it is indexed. Texts naming the same
    areas share one set: most name one city or the whole province, and a set of its own costs
    a text about 200 bytes."""

    def __init__(self) -> None:
        self._by_key: dict[str, frozenset[Area]] = {}
        self._distinct: dict[frozenset[Area], frozenset[Area]] = {}

    def __getitem__(self, key: str) -> frozenset[Area]:
        return self._by_key[key]

    def read(self, key: str, title: str, description: str) -> None:
        areas = _text_areas(title, description)
        self._by_key[key] = self._distinct.setdefault(areas, areas)

    def forget(self, key: str) -> None:
        self._by_key.pop(key, None)


class ProductMatcher:
    """The listed products, indexed by domain and delivery form, for demands to match; a
    demand's terms are weighted by their rarity among ``demands`` (``rarity``) when given."""

    def __init__(
        self, products: Iterable[ListedProduct] = (), *, demands: TermStatistics | None = None
    ) -> None:
        self._index = _new_index()
        self._products: dict[str, ListedProduct] = {}
        self._areas = _AreasByText()
        self.demands = demands
        for product in products:
            self.upsert(product)

    def __len__(self) -> int:
        return len(self._products)

    def document_frequency(self, term: str) -> int:
        """How many listed products use ``term`` (their side's ``TermStatistics``)."""
        return self._index.document_frequency(term)

    def __contains__(self, product_id: object) -> bool:
        return product_id in self._products

    def get(self, product_id: str) -> ListedProduct | None:
        return self._products.get(product_id)

    def upsert(self, product: ListedProduct) -> None:
        """Add a product or replace the indexed version of it (one document's work)."""
        self._index.add(
            product.product_id,
            (_shelf(product),),
            tokens(product.title),
            tokens(product.description),
        )
        self._products[product.product_id] = product
        self._areas.read(product.product_id, product.title, product.description)

    def remove(self, product_id: str) -> bool:
        """Forget a product; False if it was not indexed."""
        self._products.pop(product_id, None)
        self._areas.forget(product_id)
        return self._index.remove(product_id)

    def _ranking(
        self, demand: Demand
    ) -> tuple[Callable[[str], bool], Callable[[str], AreaFit], Callable[[str], float]]:
        """For one demand: whether a product passes the hard filters, how its area fits, and
        the factor its score is ranked by."""
        products, areas = self._products, self._areas
        wanted = _text_areas(demand.title, demand.description)

        def accept(product_id: str) -> bool:
            return passes_filters(demand, products[product_id])

        def fit(product_id: str) -> AreaFit:
            return area_fit(areas[product_id], wanted)

        def prior(product_id: str) -> float:
            return fit(product_id).weight

        return accept, fit, prior

    def top_products(self, demand: Demand, k: int = DEFAULT_K) -> list[Match]:
        """The ``k`` best products for ``demand`` that pass every hard filter, best first."""
        accept, fit, prior = self._ranking(demand)
        query = _weighted_query(demand.title, demand.description, self.demands)
        hits, expansion = _ranked(
            self._index, query, _shelves(demand), k, accept=accept, prior=prior
        )
        return [
            _match(demand, self._products[hit.key], hit, expansion, fit(hit.key)) for hit in hits
        ]

    def explain(self, demand: Demand, product_id: str) -> Explanation | None:
        """Every filter's verdict, the text relevance and the area fit for one pair (``None``:
        unknown id).

        The score is the one ``top_products`` gives the product (same expanded query, same
        area weight), so a product that failed a filter can be compared with those that
        matched."""
        product = self._products.get(product_id)
        if product is None:
            return None
        accept, fit, prior = self._ranking(demand)
        query = _weighted_query(demand.title, demand.description, self.demands)
        scores = self._index.scores(query, _shelves(demand))
        first_round = self._index.top(scores, FEEDBACK_DOCUMENTS, accept)
        expansion = _feedback(self._index, query, first_round)
        hit = self._index.score(product_id, query + expansion)
        if hit is None:  # pragma: no cover - products and the index change together
            return None
        own_terms = {term for term, _weight in query}
        failed = exclusions(demand, product)
        failed_names = {exclusion.filter for exclusion in failed}
        return Explanation(
            demand_id=demand.demand_id,
            product_id=product_id,
            filters_passed=tuple(name for name in ALL_FILTERS if name not in failed_names),
            exclusions=failed,
            score=hit.score * prior(product_id),
            matched_terms=tuple(term for term in hit.matched_terms if term in own_terms),
            area_fit=fit(product_id),
        )


class DemandMatcher:
    """The open demands, indexed under each (domain, delivery form) they accept, for operators
    to find; a product's terms are weighted by their rarity among ``products`` when given.

    The service keeps it to open demands: a demand that closes or expires is removed.
    """

    def __init__(
        self, demands: Iterable[Demand] = (), *, products: TermStatistics | None = None
    ) -> None:
        self._index = _new_index()
        self._demands: dict[str, Demand] = {}
        self._areas = _AreasByText()
        self.products = products
        for demand in demands:
            self.upsert(demand)

    def __len__(self) -> int:
        return len(self._demands)

    def document_frequency(self, term: str) -> int:
        """How many open demands use ``term`` (their side's ``TermStatistics``)."""
        return self._index.document_frequency(term)

    def __contains__(self, demand_id: object) -> bool:
        return demand_id in self._demands

    def get(self, demand_id: str) -> Demand | None:
        return self._demands.get(demand_id)

    def upsert(self, demand: Demand) -> None:
        self._index.add(
            demand.demand_id,
            _shelves(demand),
            tokens(demand.title),
            tokens(demand.description),
        )
        self._demands[demand.demand_id] = demand
        self._areas.read(demand.demand_id, demand.title, demand.description)

    def remove(self, demand_id: str) -> bool:
        self._demands.pop(demand_id, None)
        self._areas.forget(demand_id)
        return self._index.remove(demand_id)

    def open_demands_for(
        self, products: Sequence[ListedProduct], k: int = DEFAULT_K
    ) -> list[Match]:
        """The ``k`` open demands best served by one of ``products`` (an operator's listed
        products), best first, each with the product that serves it best.

        A demand's score is its best product's score. Each product's own top ``k`` suffices:
        a demand in the overall top ``k`` is, for its best product, beaten only by demands
        that also beat it overall.
        """
        best: dict[str, tuple[float, str, Match]] = {}
        demands, areas = self._demands, self._areas
        for product in sorted(products, key=lambda candidate: candidate.product_id):
            if not (product.active and product.operator_authorized):
                continue
            offered = _text_areas(product.title, product.description)

            def accept(demand_id: str, product: ListedProduct = product) -> bool:
                return passes_filters(demands[demand_id], product)

            def prior(demand_id: str, offered: frozenset[Area] = offered) -> float:
                return area_fit(offered, areas[demand_id]).weight

            query = _weighted_query(product.title, product.description, self.products)
            hits, expansion = _ranked(
                self._index, query, (_shelf(product),), k, accept=accept, prior=prior
            )
            for hit in hits:
                current = best.get(hit.key)
                # Higher score wins; on a tie the smaller product id, for a stable answer.
                if current is None or (-hit.score, product.product_id) < (-current[0], current[1]):
                    fit = area_fit(offered, areas[hit.key])
                    match = _match(demands[hit.key], product, hit, expansion, fit)
                    best[hit.key] = (hit.score, product.product_id, match)
        ranked = sorted(best.items(), key=lambda item: (-item[1][0], item[0]))[:k]
        return [match for _demand_id, (_score, _product_id, match) in ranked]
