from __future__ import annotations

import subprocess
import sys

import pytest

from listings.domains import DataDomain
from listings.text import query_terms, tokens


def test_domain_terms_survive_inside_longer_text() -> None:
    assert "气象" in tokens("全省气象观测数据")
    assert "生态环境" in tokens("生态环境监测与就业社保统计")
    assert "就业社保" in tokens("生态环境监测与就业社保统计")


@pytest.mark.parametrize("domain", list(DataDomain))
def test_every_domain_label_is_one_term(domain: DataDomain) -> None:
    assert domain.label in tokens(f"提供{domain.label}数据")


def test_search_mode_also_yields_the_parts_of_long_words() -> None:
    assert {"医疗", "健康", "医疗健康"} <= set(tokens("医疗健康数据"))


def test_punctuation_whitespace_and_stopwords_are_dropped() -> None:
    result = tokens("气象、交通 和 医疗健康的数据!(2024年)…… ——“实时”")
    assert result
    assert all(token.strip() == token and token for token in result)
    assert not {"、", "!", "(", ")", "……", "——", "“", "”", "和", "的", " "} & set(result)
    assert {"气象", "交通", "医疗健康", "2024", "实时"} <= set(result)


def test_english_is_lowercased_and_full_width_folded() -> None:
    assert tokens("Traffic API 实时路况") == ["traffic", "api", "实时", "路况"]
    assert "api" in tokens("ＡＰＩ接口")
    assert "the" not in tokens("the Weather of Guangdong")


def test_query_terms_are_distinct_and_skip_generic_words() -> None:
    assert query_terms("气象数据") == ["气象"]
    assert query_terms("气象 气象 交通") == ["气象", "交通"]
    assert query_terms("数据") == ["数据"]
    assert query_terms("、,。") == []


def test_first_use_is_quiet_on_stderr() -> None:
    completed = subprocess.run(
        [
            sys.executable,
            "-c",
            "from listings.text import tokens; print(tokens('全省气象观测数据'))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "气象" in completed.stdout
    assert completed.stderr == ""
