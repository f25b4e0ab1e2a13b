"""Catalog search (目录检索, MISSION §4): Chinese full-text over listed products.

Indexing: the product's text is segmented by jieba (``listings.text``) and stored as a
PostgreSQL ``tsvector`` written as a literal (``'气象':1A,7A '观测':2A …``), with positions
and weights (title A, domain and operator B, description D). Writing the literal, rather than
``to_tsvector('simple', …)`` over space-joined tokens, keeps PostgreSQL's own parser (whose
idea of a "word" depends on the server's locale) out of the way: jieba alone decides the terms,
identically at index and at query time. A GIN index serves ``@@``; ``ts_rank_cd`` ranks.

Pagination is keyset: a page ends at some (rank, id) and the next starts after it, so pages
are stable when products are listed meanwhile. The cursor is opaque: base64url JSON of that
(rank, id) and a fingerprint of the search, followed by a check value. The catalog is public,
so the check is not a secret MAC; it only makes a damaged or edited cursor, or one reused with
another search, a 400 naming ``cursor`` instead of a silently wrong page.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from uuid import UUID

from listings import repository
from listings.domains import DataDomain, DeliveryForm, Grade, Purpose
from listings.errors import DomainValueError
from listings.repository import CatalogFilters, CatalogRow
from listings.text import query_terms, tokens

MAX_QUERY_LENGTH = 200
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
# PostgreSQL keeps tsvector positions up to 16383; later ones add nothing to ranking.
_MAX_POSITION = 16383
_CURSOR_VERSION = 1


def quote_lexeme(lexeme: str) -> str:
    escaped = lexeme.replace("\\", "\\\\").replace("'", "''")
    return f"'{escaped}'"


def search_document(weighted_texts: Iterable[tuple[str, str]]) -> str:
    """A ``tsvector`` literal for texts given as (text, weight letter A–D), positions running on
    across the texts in order."""
    positions: dict[str, list[str]] = {}
    position = 0
    for text, weight in weighted_texts:
        if weight not in {"A", "B", "C", "D"}:
            raise ValueError(f"tsvector weights are A–D, not {weight!r}")
        for token in tokens(text):
            position += 1
            if position > _MAX_POSITION:
                break
            # Weight D is the default and is written without a letter.
            positions.setdefault(token, []).append(f"{position}{'' if weight == 'D' else weight}")
    return " ".join(
        f"{quote_lexeme(lexeme)}:{','.join(marks)}" for lexeme, marks in positions.items()
    )


def product_document(
    *, title: str, description: str, domain: DataDomain, operator_name: str, scenario: str | None
) -> str:
    """The search document of a product (see the module docstring for the weights)."""
    texts = [(title, "A"), (f"{domain.label} {operator_name} {scenario or ''}", "B")]
    texts.append((description, "D"))
    return search_document(texts)


def tsquery_for(text: str) -> str | None:
    """A ``tsquery`` literal requiring every search term of ``text``; ``None`` if it has none."""
    terms = query_terms(text)
    if not terms:
        return None
    return " & ".join(quote_lexeme(term) for term in terms)


@dataclass(frozen=True)
class CatalogQuery:
    text: str | None = None
    domain: DataDomain | None = None
    delivery_form: DeliveryForm | None = None
    grade: Grade | None = None
    purpose: Purpose | None = None
    price_min_minor: int | None = None
    price_max_minor: int | None = None
    operator_id: UUID | None = None
    limit: int = DEFAULT_PAGE_SIZE
    cursor: str | None = None

    def __post_init__(self) -> None:
        if self.text is not None and len(self.text) > MAX_QUERY_LENGTH:
            raise DomainValueError("q", f"must be at most {MAX_QUERY_LENGTH} characters long")
        for field, value in (
            ("price_min", self.price_min_minor),
            ("price_max", self.price_max_minor),
        ):
            if value is not None and value < 0:
                raise DomainValueError(field, f"must not be negative ({value})")
        if (
            self.price_min_minor is not None
            and self.price_max_minor is not None
            and self.price_min_minor > self.price_max_minor
        ):
            raise DomainValueError("price_max", "must not be below price_min")
        if not 1 <= self.limit <= MAX_PAGE_SIZE:
            raise DomainValueError("limit", f"must be 1–{MAX_PAGE_SIZE}, not {self.limit}")

    def filters(self) -> CatalogFilters:
        return CatalogFilters(
            tsquery=None if not self.text else tsquery_for(self.text),
            domain=self.domain,
            delivery_form=self.delivery_form,
            grade=self.grade,
            purpose=self.purpose,
            price_min_minor=self.price_min_minor,
            price_max_minor=self.price_max_minor,
            operator_id=self.operator_id,
        )


def _fingerprint(filters: CatalogFilters) -> str:
    described = json.dumps(
        [
            filters.tsquery,
            None if filters.domain is None else filters.domain.value,
            None if filters.delivery_form is None else filters.delivery_form.value,
            None if filters.grade is None else filters.grade.value,
            None if filters.purpose is None else filters.purpose.value,
            filters.price_min_minor,
            filters.price_max_minor,
            None if filters.operator_id is None else str(filters.operator_id),
        ],
        ensure_ascii=False,
    )
    return hashlib.sha256(described.encode()).hexdigest()[:16]


def _check_value(body: bytes) -> str:
    digest = hashlib.sha256(b"catalog-cursor\x00" + body).digest()[:9]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def encode_cursor(rank: float, product_id: UUID, filters: CatalogFilters) -> str:
    body = json.dumps(
        {"v": _CURSOR_VERSION, "r": rank, "i": str(product_id), "f": _fingerprint(filters)},
        separators=(",", ":"),
    ).encode()
    return base64.urlsafe_b64encode(body).decode().rstrip("=") + "." + _check_value(body)


def decode_cursor(cursor: str, filters: CatalogFilters) -> tuple[float, UUID]:
    """The (rank, id) a cursor stands for; ``DomainValueError("cursor")`` if it was damaged,
    edited, or made for another search."""
    encoded, dot, check = cursor.partition(".")
    try:
        body = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    except (binascii.Error, ValueError):
        raise DomainValueError("cursor", "the cursor is not valid") from None
    if not dot or check != _check_value(body):
        raise DomainValueError("cursor", "the cursor is not valid (damaged or edited)")
    try:
        content = json.loads(body)
        rank = float(content["r"])
        product_id = UUID(content["i"])
        version, fingerprint = content["v"], content["f"]
    except (ValueError, KeyError, TypeError):
        raise DomainValueError("cursor", "the cursor is not valid") from None
    if version != _CURSOR_VERSION or fingerprint != _fingerprint(filters):
        raise DomainValueError("cursor", "the cursor belongs to a different search")
    return rank, product_id


@dataclass(frozen=True)
class FacetValue:
    value: str
    label: str
    count: int


@dataclass(frozen=True)
class CatalogPage:
    items: list[CatalogRow]
    facets: dict[str, list[FacetValue]]
    total: int
    next_cursor: str | None


_LABELS: dict[str, dict[str, str]] = {
    "domain": {member.value: member.label for member in DataDomain},
    "delivery_form": {member.value: member.label for member in DeliveryForm},
    "grade": {member.value: member.label for member in Grade},
    "purpose": {member.value: member.label for member in Purpose},
}


async def search(query: CatalogQuery, *, with_facets: bool = True) -> CatalogPage:
    """One page of the catalog for ``query``, with facet counts over every match."""
    filters = query.filters()
    if query.text and filters.tsquery is None:
        # The query had only punctuation or stop words: nothing can match it.
        return CatalogPage(items=[], facets={}, total=0, next_cursor=None)
    after = None if query.cursor is None else decode_cursor(query.cursor, filters)
    result = await repository.search_catalog(
        filters, after=after, limit=query.limit + 1, with_facets=with_facets
    )
    rows = result.rows
    next_cursor = None
    if len(rows) > query.limit:
        rows = rows[: query.limit]
        last = rows[-1]
        next_cursor = encode_cursor(last.rank, last.record.id, filters)
    facets: dict[str, list[FacetValue]] = {}
    for name, values in result.facets.items():
        labels = _LABELS.get(name, {})
        facets[name] = [
            FacetValue(value=value, label=labels.get(value, operator_name), count=count)
            for value, operator_name, count in values
        ]
    return CatalogPage(items=rows, facets=facets, total=result.total, next_cursor=next_cursor)
