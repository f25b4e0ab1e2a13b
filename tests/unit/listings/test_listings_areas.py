"""Reading the areas a text names, and which areas cover which."""

from __future__ import annotations

import pytest

from listings.areas import NATIONWIDE, WHOLE_PROVINCE, Area, areas_named, covers_any


def names(text: str) -> set[str]:
    return {area.name for area in areas_named(text)}


def only(text: str) -> Area:
    (area,) = areas_named(text)
    return area


def test_full_names_of_every_level_are_read_with_their_codes() -> None:
    assert areas_named("广东省广州市天河区的停车位数据") == {
        Area("44", "广东省"),
        Area("4401", "广州市"),
        Area("440106", "天河区"),
    }


@pytest.mark.parametrize(
    ("text", "full_name"),
    [
        ("需要广州的停车数据", "广州市"),
        ("覆盖广东与广西", "广东省"),
        ("广西的糖料种植", "广西壮族自治区"),
        ("北京的公交客流", "北京市"),
    ],
)
def test_provinces_and_cities_are_read_under_their_short_names(text: str, full_name: str) -> None:
    assert full_name in names(text)


def test_the_longest_name_wins_and_is_not_read_again_inside() -> None:
    assert names("韶关市") == {"韶关市"}
    assert names("广州市场监管数据") == {"广州市"}


def test_two_character_county_names_are_not_read_out_of_ordinary_words() -> None:
    assert areas_named("华东区域的中心城区和县城") == frozenset()


def test_a_name_several_counties_share_stands_for_each() -> None:
    assert {area.code for area in areas_named("朝阳区")} == {"110105", "220104"}


def test_the_words_for_the_whole_province_and_country() -> None:
    assert areas_named("覆盖全省范围") == {WHOLE_PROVINCE}
    assert areas_named("全国各地市") == {NATIONWIDE}


def test_a_text_naming_no_place_names_no_area() -> None:
    assert areas_named("逐小时降水预报接口,未来72小时降水概率") == frozenset()
    assert areas_named("") == frozenset()


def test_an_area_covers_the_areas_inside_it_and_not_the_other_way() -> None:
    guangdong, guangzhou, tianhe = only("广东省"), only("广州市"), only("天河区")
    foshan = only("佛山市")
    assert guangdong.covers(guangzhou)
    assert guangdong.covers(tianhe)
    assert guangzhou.covers(tianhe)
    assert guangzhou.covers(guangzhou)
    assert not tianhe.covers(guangzhou)
    assert not guangzhou.covers(guangdong)
    assert not foshan.covers(tianhe)


def test_the_whole_province_covers_any_place_and_only_a_province_or_the_country_covers_it() -> None:
    guangzhou, guangdong = only("广州市"), only("广东省")
    assert WHOLE_PROVINCE.covers(guangzhou)
    assert WHOLE_PROVINCE.covers(guangdong)
    assert WHOLE_PROVINCE.covers(WHOLE_PROVINCE)
    assert not WHOLE_PROVINCE.covers(NATIONWIDE)
    assert guangdong.covers(WHOLE_PROVINCE)
    assert NATIONWIDE.covers(WHOLE_PROVINCE)
    assert NATIONWIDE.covers(guangzhou)
    assert not guangzhou.covers(WHOLE_PROVINCE)


def test_covers_any_asks_whether_one_offered_area_covers_one_wanted() -> None:
    offered = areas_named("佛山市和东莞市的数据")
    assert covers_any(offered, areas_named("东莞市"))
    assert not covers_any(offered, areas_named("韶关市"))
    assert not covers_any(offered, frozenset())
