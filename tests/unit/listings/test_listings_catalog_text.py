"""The catalog's pure parts: tsvector and tsquery literals, cursors, and CSV guarding."""

from __future__ import annotations

from uuid import uuid4

import pytest

from listings.catalog import (
    CatalogQuery,
    decode_cursor,
    encode_cursor,
    quote_lexeme,
    search_document,
    tsquery_for,
)
from listings.disclosure import csv_cell, to_csv
from listings.domains import DataDomain
from listings.errors import DomainValueError
from listings.repository import CatalogFilters


def test_search_document_weights_and_positions() -> None:
    document = search_document([("气象数据", "A"), ("台风预警", "D")])
    assert "'气象':1A" in document
    # Weight D is PostgreSQL's default and is written without a letter.
    assert "'台风':" in document
    assert "D" not in document.split("'台风':")[1].split(" ")[0]


def test_lexemes_are_quoted_safely() -> None:
    assert quote_lexeme("o'neil") == "'o''neil'"
    assert quote_lexeme("a\\b") == "'a\\\\b'"


def test_query_requires_every_specific_term() -> None:
    assert tsquery_for("气象数据") == "'气象'"
    assert tsquery_for("公交 线路") == "'公交' & '线路'"
    assert tsquery_for("!!!") is None


def test_cursor_round_trip_and_tamper_detection() -> None:
    filters = CatalogFilters(tsquery="'气象'", domain=DataDomain.METEOROLOGY)
    product_id = uuid4()
    cursor = encode_cursor(0.25, product_id, filters)
    assert decode_cursor(cursor, filters) == (0.25, product_id)
    with pytest.raises(DomainValueError) as error:
        decode_cursor(cursor, CatalogFilters(tsquery="'公交'"))
    assert error.value.field == "cursor"
    body, check = cursor.split(".")
    for bad in (body[:-1] + ("A" if body[-1] != "A" else "B") + "." + check, "x", "", "a.b.c"):
        with pytest.raises(DomainValueError):
            decode_cursor(bad, filters)


def test_query_bounds() -> None:
    with pytest.raises(DomainValueError) as error:
        CatalogQuery(price_min_minor=-1)
    assert error.value.field == "price_min"
    with pytest.raises(DomainValueError):
        CatalogQuery(limit=101)


@pytest.mark.parametrize("value", ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"])
def test_formula_cells_are_neutralised(value: str) -> None:
    assert csv_cell(value) == "'" + value


def test_csv_has_header_and_plain_cells_untouched() -> None:
    text = to_csv(("a", "b"), [{"a": "气象", "b": "=cmd"}])
    assert text.splitlines() == ["a,b", "气象,'=cmd"]
