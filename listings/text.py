"""Chinese text to search terms, for the catalog index and for matching demand to listings.

Segmentation is jieba's search-engine mode (``cut_for_search``), which emits a long word and
also the dictionary words inside it ("医疗健康" → 医疗, 健康, 医疗健康), so a query for either
part finds the whole. Before segmenting, text is NFKC-normalised (full-width letters and digits
typed with a Chinese IME become ASCII) and lower-cased; punctuation, symbols, whitespace and a
small list of function words are dropped afterwards.

The exchange's vocabulary (each data domain, delivery form and purpose label, plus a few terms
of the trade) is added to a private jieba tokenizer as user words, so that "气象数据" yields
气象 and "生态环境监测" keeps 生态环境 together. The private tokenizer leaves jieba's global
default untouched for any other user. It loads its dictionary lazily, once, on first use
(about a second), with jieba's stderr logging silenced.
"""

from __future__ import annotations

import logging
import threading
import unicodedata
import warnings

from listings.domains import DataDomain, DeliveryForm, Purpose

# jieba 0.42.1 has regexes with invalid escape sequences, which Python reports as a
# DeprecationWarning each time the source is compiled (every import when bytecode is not
# written), and which the "module" filters cannot match because they fire at compile time.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import jieba

# Terms of the trade that the general dictionary would split (MISSION §1–§4).
_EXCHANGE_TERMS = (
    "公共数据",
    "授权运营",
    "数据产品",
    "数据资源",
    "数据服务",
    "登记赋码",
    "隐私计算",
    "数据交易",
)

STOPWORDS = frozenset(
    {
        "的",
        "了",
        "和",
        "与",
        "及",
        "以及",
        "或",
        "或者",
        "等",
        "在",
        "是",
        "有",
        "对",
        "为",
        "把",
        "被",
        "之",
        "其",
        "也",
        "而",
        "并",
        "以",
        "于",
        "从",
        "到",
        "将",
        "这",
        "那",
        "该",
        "各",
        "a",
        "an",
        "the",
        "of",
        "and",
        "or",
        "to",
        "in",
        "for",
        "on",
        "with",
        "by",
    }
)

# Words that nearly every listing carries; in a query they match everything and rank nothing,
# so ``query_terms`` drops them unless the query consists of nothing else.
GENERIC_QUERY_TERMS = frozenset({"数据", "信息", "资料"})

# jieba's suggested frequency for a new word only makes it win when it stands alone (生态环境
# gets 4, so 生态环境监测 splits as 生态 + 环境监测). Giving the vocabulary the frequency of a
# common noun (教育 has about 24 000 in jieba's dictionary) makes it win beside other words too.
_USER_WORD_FREQUENCY = 20_000

_tokenizer: jieba.Tokenizer | None = None
_tokenizer_lock = threading.Lock()


def _user_words() -> list[str]:
    labels = [
        member.label for vocabulary in (DataDomain, DeliveryForm, Purpose) for member in vocabulary
    ]
    return [*labels, *_EXCHANGE_TERMS]


def _get_tokenizer() -> jieba.Tokenizer:
    global _tokenizer  # noqa: PLW0603 -- the lazily built tokenizer is process-wide by design
    if _tokenizer is None:
        with _tokenizer_lock:
            if _tokenizer is None:
                jieba.setLogLevel(logging.WARNING)
                tokenizer = jieba.Tokenizer()
                tokenizer.initialize()
                for word in _user_words():
                    known_frequency = tokenizer.FREQ.get(word) or 0
                    tokenizer.add_word(word, freq=max(known_frequency, _USER_WORD_FREQUENCY))
                _tokenizer = tokenizer
    return _tokenizer


def _is_term(token: str) -> bool:
    """False for tokens made only of punctuation, symbols, separators or control characters."""
    return any(unicodedata.category(character)[0] in "LN" for character in token)


def tokens(text: str) -> list[str]:
    """Search terms of ``text`` in order, with repeats (for term frequencies when indexing)."""
    normalised = unicodedata.normalize("NFKC", text).lower()
    return [
        token
        for token in (str(raw).strip() for raw in _get_tokenizer().cut_for_search(normalised))
        if token and _is_term(token) and token not in STOPWORDS
    ]


def query_terms(text: str) -> list[str]:
    """Distinct search terms of a query, in first-seen order, without generic words such as 数据
    (kept only when the query has nothing more specific)."""
    distinct = list(dict.fromkeys(tokens(text)))
    specific = [term for term in distinct if term not in GENERIC_QUERY_TERMS]
    return specific or distinct
