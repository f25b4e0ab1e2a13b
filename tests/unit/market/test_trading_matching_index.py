"""The BM25 index kept up to date one change at a time answers exactly as a rebuild does."""

from __future__ import annotations

import dataclasses
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from market.trading.bm25 import MIN_TERM_WEIGHT, Bm25Index
from market.trading.matching import ProductMatcher
from tests.unit.market.trading_examples import CATALOG, demand

VOCABULARY = ["气象", "降水", "预报", "台风", "路径", "公交", "客流", "医院", "床位", "更新"]
KEYS = [f"doc-{number}" for number in range(8)]
PARTITIONS = ["a", "b", "c"]

documents = st.tuples(
    st.lists(st.sampled_from(VOCABULARY), max_size=4),
    st.lists(st.sampled_from(VOCABULARY), min_size=1, max_size=12),
    st.sets(st.sampled_from(PARTITIONS), min_size=1, max_size=2),
)
changes = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.sampled_from(KEYS), documents),
        st.tuples(st.just("remove"), st.sampled_from(KEYS), st.none()),
    ),
    max_size=30,
)
queries = st.lists(
    st.tuples(st.sampled_from(VOCABULARY), st.sampled_from([0.5, 1.0, 2.0])),
    min_size=1,
    max_size=5,
    unique_by=lambda weighted: weighted[0],
)

Document = tuple[list[str], list[str], set[str]]


def apply(
    index: Bm25Index[str, str], live: dict[str, Document], change: tuple[str, str, Document | None]
) -> None:
    action, key, document = change
    if action == "add" and document is not None:
        title, body, partitions = document
        index.add(key, partitions, title, body)
        live[key] = document
    else:
        assert index.remove(key) == (key in live)
        live.pop(key, None)


def rebuilt(live: dict[str, Document]) -> Bm25Index[str, str]:
    index: Bm25Index[str, str] = Bm25Index()
    for key in sorted(live):
        title, body, partitions = live[key]
        index.add(key, partitions, title, body)
    return index


@settings(max_examples=200, deadline=None)
@given(changes, queries, st.sets(st.sampled_from(PARTITIONS), min_size=1))
def test_incremental_changes_score_exactly_like_a_rebuild(
    history: list[tuple[str, str, Document | None]],
    query: list[tuple[str, float]],
    partitions: set[str],
) -> None:
    incremental: Bm25Index[str, str] = Bm25Index()
    live: dict[str, Document] = {}
    for change in history:
        apply(incremental, live, change)
        # Query between changes too, so stale score caches would show.
        incremental.search(query, sorted(partitions), 3)
    fresh = rebuilt(live)

    assert len(incremental) == len(fresh) == len(live)
    ordered = sorted(partitions)
    assert incremental.search(query, ordered, 10) == fresh.search(query, ordered, 10)
    for key in live:
        assert incremental.score(key, query) == fresh.score(key, query)


@settings(max_examples=100, deadline=None)
@given(changes, queries)
def test_every_document_sharing_a_term_is_ranked_once_in_score_order(
    history: list[tuple[str, str, Document | None]], query: list[tuple[str, float]]
) -> None:
    index: Bm25Index[str, str] = Bm25Index()
    live: dict[str, Document] = {}
    for change in history:
        apply(index, live, change)
    hits = index.search(query, PARTITIONS, len(KEYS))
    terms = {term for term, _weight in query}
    # A term nearly every document holds ranks nothing and is skipped (MIN_TERM_WEIGHT).
    ranking = {term for term, weight in query if weight * index.idf(term) >= MIN_TERM_WEIGHT}
    sharing = {key for key, (title, body, _p) in live.items() if ranking & {*title, *body}}
    assert [hit.key for hit in hits] == sorted(
        (hit.key for hit in hits),
        key=lambda key: (-next(hit.score for hit in hits if hit.key == key), key),
    )
    assert {hit.key for hit in hits} == sharing
    for hit in hits:
        expected = index.score(hit.key, query)
        assert expected is not None
        assert math.isclose(hit.score, expected.score)
        assert set(hit.matched_terms) == terms & {*live[hit.key][0], *live[hit.key][1]}
        assert hit.score > 0


@settings(max_examples=100, deadline=None)
@given(
    changes,
    queries,
    st.dictionaries(st.sampled_from(KEYS), st.sampled_from([0.25, 0.6, 1.0])),
    st.integers(1, 4),
)
def test_a_prior_ranks_as_scaling_every_score_first_would(
    history: list[tuple[str, str, Document | None]],
    query: list[tuple[str, float]],
    factors: dict[str, float],
    k: int,
) -> None:
    """``top`` reads candidates lazily, stopping once none left can enter the top k; the result
    is the brute-force one: every shared document's score scaled, then sorted."""
    index: Bm25Index[str, str] = Bm25Index()
    live: dict[str, Document] = {}
    for change in history:
        apply(index, live, change)

    def prior(key: str) -> float:
        return factors.get(key, 1.0)

    hits = index.top(index.scores(query, PARTITIONS), k, prior=prior)
    every = index.search(query, PARTITIONS, len(KEYS))
    expected = sorted(((hit.score * prior(hit.key), hit.key) for hit in every),
                      key=lambda scored: (-scored[0], scored[1]))[:k]  # fmt: skip
    assert [hit.key for hit in hits] == [key for _score, key in expected]
    for hit, (score, _key) in zip(hits, expected, strict=True):
        assert math.isclose(hit.score, score)


def test_a_rejected_candidate_is_skipped_not_counted() -> None:
    index: Bm25Index[str, str] = Bm25Index()
    for number in range(30):
        index.add(f"doc-{number:02d}", ["a"], ["降水"], ["预报"] * (number % 5 + 1))
        index.add(f"other-{number:02d}", ["a"], ["台风"], ["路径"])
    hits = index.search([("预报", 1.0)], ["a"], 3, accept=lambda key: key.endswith("7"))
    assert [hit.key for hit in hits] == ["doc-07", "doc-17", "doc-27"]


@settings(max_examples=15, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, len(CATALOG) - 1), st.booleans(), st.booleans()),
        max_size=8,
    )
)
def test_the_matcher_updated_listing_by_listing_equals_a_fresh_one(
    edits: list[tuple[int, bool, bool]],
) -> None:
    incremental = ProductMatcher(CATALOG)
    current = {product.product_id: product for product in CATALOG}
    for position, keep, active in edits:
        product = CATALOG[position]
        if keep:
            changed = dataclasses.replace(product, active=active)
            incremental.upsert(changed)
            current[product.product_id] = changed
        else:
            incremental.remove(product.product_id)
            current.pop(product.product_id, None)
    fresh = ProductMatcher(current[key] for key in sorted(current))
    asked = demand()
    assert incremental.top_products(asked) == fresh.top_products(asked)
