"""The places a text names, as administrative areas, and whether one set of areas covers another.

A public data product covers an area (广州市的停车位, 覆盖全省范围) and a buyer asks for one
(希望获得韶关市……的相关资料). Neither is a structured field of a listing or a demand, so the
areas are read from the text: the names of China's county-level and higher divisions
(``data/divisions.tsv``, coded by GB/T 2260), the short forms of provinces and prefecture-level
cities (广东, 广州), and the words for the whole province or country (全省, 全国).

Codes carry the hierarchy: ``44`` is 广东省, ``4401`` 广州市 and ``440106`` 天河区, so 广州市
covers 天河区 and 广东省 covers both. 全省 stands for the exchange's own province, whichever
it is: it covers every area a buyer there asks about, and only a province or the whole country
covers it.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

_DIVISIONS_FILE = Path(__file__).resolve().parent / "data" / "divisions.tsv"

_COUNTRY, _PROVINCE, _PREFECTURE, _COUNTY = 0, 1, 2, 3
# A two-character county name (东区, 城区, 和县) is too often part of an ordinary word (华东区域,
# 中心城区, 和县城) to be read as a place; such counties are found only with their prefecture.
_SHORTEST_COUNTY_NAME = 3
# Suffixes dropped to form the short name people write (广东省 → 广东, 广西壮族自治区 → 广西,
# 广州市 → 广州), for provinces and prefecture-level cities only.
_FORMAL_SUFFIX = re.compile(r"(省|市|特别行政区|(壮族|回族|维吾尔)?自治区)$")


@dataclass(frozen=True)
class Area:
    """An administrative area: ``code`` is its GB/T 2260 code without trailing zero pairs (``44``
    广东省, ``4401`` 广州市, ``440106`` 天河区, ``""`` the whole country); the exchange's own
    province, unnamed, is ``WHOLE_PROVINCE``."""

    code: str
    name: str

    @property
    def level(self) -> int:
        return _PROVINCE if self == WHOLE_PROVINCE else len(self.code) // 2

    def covers(self, other: Area) -> bool:
        """Whether every place of ``other`` lies in this area."""
        if other == WHOLE_PROVINCE:
            return self.level <= _PROVINCE
        if self == WHOLE_PROVINCE:
            return other.level >= _PROVINCE
        return other.code.startswith(self.code)


NATIONWIDE = Area("", "全国")
WHOLE_PROVINCE = Area("*", "全省")
_WORDS_FOR_ALL = {"全国": NATIONWIDE, "全省": WHOLE_PROVINCE}


def _significant_code(code: str) -> str:
    """``440100`` → ``4401``: the code of an area is the prefix its sub-areas share."""
    trimmed = code
    while trimmed.endswith("00"):
        trimmed = trimmed[:-2]
    return trimmed


def _divisions() -> Iterator[Area]:
    with _DIVISIONS_FILE.open(encoding="utf-8") as lines:
        for line in lines:
            if line.startswith("#") or not line.strip():
                continue
            code, name = line.rstrip("\n").split("\t")
            yield Area(_significant_code(code), name)


@cache
def _gazetteer() -> dict[str, frozenset[Area]]:
    """Every name an area is written under, with the areas of that name (several counties share
    one: 朝阳区 is in Beijing and in Changchun)."""
    areas_by_name: dict[str, set[Area]] = {}
    for area in _divisions():
        names = {area.name}
        if area.level <= _PREFECTURE:
            short = _FORMAL_SUFFIX.sub("", area.name)
            if len(short) >= 2:
                names.add(short)
        elif len(area.name) < _SHORTEST_COUNTY_NAME:
            continue
        for name in names:
            areas_by_name.setdefault(name, set()).add(area)
    for word, area in _WORDS_FOR_ALL.items():
        areas_by_name[word] = {area}
    return {name: frozenset(areas) for name, areas in areas_by_name.items()}


@cache
def _name_lengths_by_first_character() -> dict[str, tuple[int, ...]]:
    lengths: dict[str, set[int]] = {}
    for name in _gazetteer():
        lengths.setdefault(name[0], set()).add(len(name))
    return {first: tuple(sorted(found, reverse=True)) for first, found in lengths.items()}


def areas_named(text: str) -> frozenset[Area]:
    """The areas ``text`` names. Read left to right, the longest name wins and is not read again
    inside (广州市 is 广州市, not also 广州); a name several areas share stands for each."""
    gazetteer = _gazetteer()
    lengths_by_first = _name_lengths_by_first_character()
    found: set[Area] = set()
    position = 0
    while position < len(text):
        for length in lengths_by_first.get(text[position], ()):
            areas = gazetteer.get(text[position : position + length])
            if areas is not None:
                found.update(areas)
                position += length
                break
        else:
            position += 1
    return frozenset(found)


def covers_any(offered: Collection[Area], wanted: Collection[Area]) -> bool:
    """Whether one of the ``offered`` areas covers one of the ``wanted`` ones."""
    return any(area.covers(place) for area in offered for place in wanted)
