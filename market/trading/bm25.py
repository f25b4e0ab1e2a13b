"""An incremental Okapi BM25 index over pre-tokenised two-field documents (title, body).

Scoring (Robertson & Zaragoza, "The Probabilistic Relevance Framework: BM25 and Beyond", 2009)::

    score(q, d) = Σ_{t ∈ q}  w_q(t) · idf(t) · tf(t, d) · (k1 + 1)
                                     / (tf(t, d) + k1 · (1 − b + b · |d| / avgdl))

    idf(t) = ln(1 + (N − df(t) + 0.5) / (df(t) + 0.5))

* ``k1 = 1.2`` bounds how much repeating a term can add (saturation); ``b = 0.75`` is how far a
  long document is penalised against the average length. Both are the textbook defaults and
  were kept after tuning on bench/data/matching (other values moved nDCG@10 by < 0.01).
* idf is Lucene's variant, which stays positive for a term in more than half of the documents,
  so every shared term adds something and a score of 0 means "no term in common".
* The title is boosted by counting each title occurrence ``title_boost`` times, in both
  ``tf`` and ``|d|``: the "weight a field by repeating it" form of BM25F (Robertson, Zaragoza &
  Taylor 2004), which keeps one length normalisation and one saturation curve per document.

Documents live in partitions (for the matcher: data domains). A query names the partitions it
may return, and only their postings are read, so a hard filter on the partition costs nothing
and a query's work grows with the size of its partitions, not of the whole index. Statistics
(N, df, avgdl) stay global, so a document's score does not depend on which partitions a query
reads.

Everything kept is an integer (term frequencies, lengths, document frequencies), so adding,
removing and replacing documents one by one leaves exactly the statistics a rebuild would have:
scores are bit-for-bit the same, whatever the order of the changes.
"""

from __future__ import annotations

import heapq
import math
from array import array
from collections import Counter
from collections.abc import Callable, Collection, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, Self, TypeVar

DEFAULT_K1 = 1.2
DEFAULT_B = 0.75
DEFAULT_TITLE_BOOST = 3
# A query term whose weight times idf is below 0.1 adds at most 0.22 to any score (next to
# several points for a specific term), yet its postings are often the longest to read: queries
# skip it. The usual cases are a term in more than about 90 % of the documents (更新: every
# listing states its update cycle), and the words nearly every demand uses, which the matcher
# weighs towards 0 by their rarity (目前, 希望, 相关: ``matching.rarity``).
MIN_TERM_WEIGHT = 0.1


class _Ordered(Protocol):
    def __lt__(self, other: Self, /) -> bool: ...


KeyT = TypeVar("KeyT", bound=_Ordered)
PartitionT = TypeVar("PartitionT", bound=Hashable)


@dataclass(frozen=True)
class Hit(Generic[KeyT]):
    """One ranked document: its key, its BM25 score and the query terms it contains."""

    key: KeyT
    score: float
    matched_terms: tuple[str, ...]


class _Postings:
    """The documents of one partition that contain one term, as parallel arrays (about 16 bytes
    a posting, against about 100 for a dict entry).

    ``contributions`` caches each posting's tf·(k1 + 1) / (tf + k1·(1 − b + b·|d|/avgdl)),
    valid for the index statistics of ``version``; any change to the index changes avgdl, so
    a list is recomputed the first time a query reads it after a change.
    """

    __slots__ = ("contributions", "frequencies", "slots", "version")

    def __init__(self) -> None:
        self.slots = array("I")
        self.frequencies = array("I")
        self.contributions = array("d")
        self.version = -1

    def add(self, slot: int, frequency: int) -> None:
        self.slots.append(slot)
        self.frequencies.append(frequency)
        self.version = -1

    def remove(self, slot: int) -> None:
        position = self.slots.index(slot)
        del self.slots[position]
        del self.frequencies[position]
        self.version = -1

    def __len__(self) -> int:
        return len(self.slots)


class Scores(Generic[KeyT, PartitionT]):
    """A query's running BM25 scores by document slot, and the query terms summed into them;
    more terms may be added (pseudo-relevance feedback) before ranking."""

    __slots__ = ("by_slot", "partitions", "term_ids")

    def __init__(self, partitions: tuple[PartitionT, ...]) -> None:
        self.by_slot: dict[int, float] = {}
        self.term_ids: set[int] = set()
        self.partitions = partitions


def idf(frequency: int, documents: int) -> float:
    """Okapi BM25's inverse document frequency of a term ``frequency`` of ``documents``
    documents contain (the "+ 1" form, never negative)."""
    return math.log(1 + (documents - frequency + 0.5) / (frequency + 0.5))


class Bm25Index(Generic[KeyT, PartitionT]):
    """Documents keyed by ``KeyT`` (ties in score are broken by key, ascending)."""

    def __init__(
        self,
        *,
        k1: float = DEFAULT_K1,
        b: float = DEFAULT_B,
        title_boost: int = DEFAULT_TITLE_BOOST,
    ) -> None:
        if k1 < 0 or not 0 <= b <= 1 or title_boost < 1:
            raise ValueError("BM25 needs k1 ≥ 0, 0 ≤ b ≤ 1 and a title boost ≥ 1")
        self.k1 = k1
        self.b = b
        self.title_boost = title_boost
        self._term_ids: dict[str, int] = {}
        self._terms: list[str] = []
        self._document_frequency = array("I")
        self._postings: list[dict[PartitionT, _Postings]] = []
        # Per slot; a freed slot is reused by the next document added.
        self._keys: list[KeyT | None] = []
        self._lengths = array("I")
        self._document_terms: list[array[int]] = []
        self._partitions: list[tuple[PartitionT, ...]] = []
        self._free_slots: list[int] = []
        self._slot_of: dict[KeyT, int] = {}
        self._total_length = 0
        self._multi_partition_documents = 0
        # Bumped on every change; cached contributions of another version are stale.
        self._version = 0

    def __len__(self) -> int:
        return len(self._slot_of)

    def __contains__(self, key: object) -> bool:
        return key in self._slot_of

    def _term_id(self, term: str) -> int:
        term_id = self._term_ids.get(term)
        if term_id is None:
            term_id = len(self._terms)
            self._term_ids[term] = term_id
            self._terms.append(term)
            self._document_frequency.append(0)
            self._postings.append({})
        return term_id

    def add(
        self,
        key: KeyT,
        partitions: Collection[PartitionT],
        title_terms: Iterable[str],
        body_terms: Iterable[str],
    ) -> None:
        """Index a document under every partition in ``partitions``; a key already indexed is
        replaced (its old postings are removed first)."""
        if not partitions:
            raise ValueError("a document must belong to at least one partition")
        if key in self._slot_of:
            self.remove(key)
        self._version += 1
        frequencies: Counter[int] = Counter()
        for term in title_terms:
            frequencies[self._term_id(term)] += self.title_boost
        for term in body_terms:
            frequencies[self._term_id(term)] += 1
        slot = self._free_slots.pop() if self._free_slots else len(self._keys)
        ordered_partitions = tuple(dict.fromkeys(partitions))
        length = sum(frequencies.values())
        term_ids = array("I", sorted(frequencies))
        if slot == len(self._keys):
            self._keys.append(key)
            self._lengths.append(length)
            self._document_terms.append(term_ids)
            self._partitions.append(ordered_partitions)
        else:
            self._keys[slot] = key
            self._lengths[slot] = length
            self._document_terms[slot] = term_ids
            self._partitions[slot] = ordered_partitions
        self._slot_of[key] = slot
        self._total_length += length
        if len(ordered_partitions) > 1:
            self._multi_partition_documents += 1
        for term_id, frequency in frequencies.items():
            self._document_frequency[term_id] += 1
            by_partition = self._postings[term_id]
            for partition in ordered_partitions:
                postings = by_partition.get(partition)
                if postings is None:
                    postings = by_partition[partition] = _Postings()
                postings.add(slot, frequency)

    def remove(self, key: KeyT) -> bool:
        """Drop a document; False if it was not indexed."""
        slot = self._slot_of.pop(key, None)
        if slot is None:
            return False
        self._version += 1
        partitions = self._partitions[slot]
        for term_id in self._document_terms[slot]:
            self._document_frequency[term_id] -= 1
            by_partition = self._postings[term_id]
            for partition in partitions:
                postings = by_partition[partition]
                postings.remove(slot)
                if not postings:
                    del by_partition[partition]
        self._total_length -= self._lengths[slot]
        if len(partitions) > 1:
            self._multi_partition_documents -= 1
        self._keys[slot] = None
        self._lengths[slot] = 0
        self._document_terms[slot] = array("I")
        self._partitions[slot] = ()
        self._free_slots.append(slot)
        return True

    def idf(self, term: str) -> float:
        """Inverse document frequency of ``term`` (0 for a term no document contains)."""
        term_id = self._term_ids.get(term)
        if term_id is None:
            return 0.0
        if self._document_frequency[term_id] == 0:
            return 0.0
        return self._idf_of(term_id)

    def scores(
        self, weighted_terms: Sequence[tuple[str, float]], partitions: Collection[PartitionT]
    ) -> Scores[KeyT, PartitionT]:
        """BM25 scores of the documents of ``partitions`` that share a term with the query.

        ``weighted_terms`` are distinct query terms with their query weights ``w_q``.
        """
        scores: Scores[KeyT, PartitionT] = Scores(tuple(dict.fromkeys(partitions)))
        self.add_terms(scores, weighted_terms)
        return scores

    def add_terms(
        self, scores: Scores[KeyT, PartitionT], weighted_terms: Sequence[tuple[str, float]]
    ) -> None:
        """Add more query terms to ``scores``: the same sums as a query holding them all, in
        the same order, so the result does not depend on how the query was split."""
        if not self._slot_of:
            return
        by_slot = scores.by_slot
        get = by_slot.get
        partitions = scores.partitions
        # A document filed under several of the queried partitions must count each term once.
        deduplicate = self._multi_partition_documents > 0 and len(partitions) > 1
        for term, query_weight in weighted_terms:
            term_id = self._term_ids.get(term)
            if term_id is None or term_id in scores.term_ids:
                continue
            scores.term_ids.add(term_id)
            weight = query_weight * self._idf_of(term_id)
            if weight < MIN_TERM_WEIGHT:
                continue
            by_partition = self._postings[term_id]
            seen: set[int] = set()
            for partition in partitions:
                postings = by_partition.get(partition)
                if postings is None:
                    continue
                contributions = self._contributions(postings)
                if deduplicate:
                    for slot, contribution in zip(postings.slots, contributions, strict=True):
                        if slot not in seen:
                            seen.add(slot)
                            by_slot[slot] = get(slot, 0.0) + weight * contribution
                else:
                    # The hot loop: one dict update a posting, the multiplication done by map.
                    for slot, value in zip(
                        postings.slots, map(weight.__mul__, contributions), strict=True
                    ):
                        by_slot[slot] = get(slot, 0.0) + value

    def top(
        self,
        scores: Scores[KeyT, PartitionT],
        k: int,
        accept: Callable[[KeyT], bool] | None = None,
        prior: Callable[[KeyT], float] | None = None,
    ) -> list[Hit[KeyT]]:
        """The ``k`` best documents, best first (ties to the smaller key, so that results do not
        depend on insertion history). ``accept`` is asked about candidates in rank order until
        ``k`` are accepted, so a filter runs on a handful of documents rather than on every
        candidate, with the same result as filtering first.

        ``prior``, when given, scales an accepted document's score by a factor in (0, 1] (a
        ranking prior that can only lower a score), and the hits carry the scaled scores.
        Candidates are then read in rank order until none left could still enter the top
        ``k``: one scoring below the ``k``th best scaled score cannot."""
        if k <= 0:
            return []
        keys = self._keys
        by_slot = scores.by_slot
        found: list[tuple[float, KeyT, int]] = []
        best_scores: list[float] = []  # the best k scaled scores so far, the kth best first
        # Ranking every candidate costs a tuple each: candidates are read in bands of score,
        # first those scoring at least the (4k)th best score (ties included), then only those
        # below it that could still enter the top k.
        pool_size = 4 * k
        upper = math.inf
        lower = heapq.nlargest(pool_size, by_slot.values())[-1] if len(by_slot) > pool_size else 0.0
        while True:
            band = [
                (-score, keys[slot], slot)
                for slot, score in by_slot.items()
                if lower <= score < upper
            ]
            heapq.heapify(band)
            while band:
                negative_score, key, slot = heapq.heappop(band)
                score = -negative_score
                if len(best_scores) == k and score < best_scores[0]:
                    band.clear()
                    break
                if key is None or (accept is not None and not accept(key)):
                    continue
                scaled = score if prior is None else score * prior(key)
                found.append((-scaled, key, slot))
                if len(best_scores) < k:
                    heapq.heappush(best_scores, scaled)
                elif scaled > best_scores[0]:
                    heapq.heapreplace(best_scores, scaled)
            if lower <= 0.0 or (len(best_scores) == k and best_scores[0] >= lower):
                break
            upper, lower = lower, best_scores[0] if len(best_scores) == k else 0.0
        found.sort()
        return [
            Hit(key, -negative_score, self._matched_terms(scores, slot))
            for negative_score, key, slot in found[:k]
        ]

    def _matched_terms(self, scores: Scores[KeyT, PartitionT], slot: int) -> tuple[str, ...]:
        return tuple(
            sorted(
                self._terms[term_id]
                for term_id in self._document_terms[slot]
                if term_id in scores.term_ids
            )
        )

    def search(
        self,
        weighted_terms: Sequence[tuple[str, float]],
        partitions: Collection[PartitionT],
        k: int,
        accept: Callable[[KeyT], bool] | None = None,
    ) -> list[Hit[KeyT]]:
        """The ``k`` best accepted documents of ``partitions`` for the query, best first; only
        documents sharing at least one term are ranked."""
        return self.top(self.scores(weighted_terms, partitions), k, accept)

    def score(self, key: KeyT, weighted_terms: Sequence[tuple[str, float]]) -> Hit[KeyT] | None:
        """The score of one document for the query, as ``search`` would give it."""
        slot = self._slot_of.get(key)
        if slot is None:
            return None
        document_terms = set(self._document_terms[slot])
        partition = self._partitions[slot][0]
        total = 0.0
        matched: list[str] = []
        seen: set[int] = set()
        for term, query_weight in weighted_terms:
            term_id = self._term_ids.get(term)
            if term_id is None or term_id not in document_terms or term_id in seen:
                continue
            seen.add(term_id)
            matched.append(term)
            weight = query_weight * self._idf_of(term_id)
            if weight < MIN_TERM_WEIGHT:
                continue
            postings = self._postings[term_id][partition]
            contribution = self._contributions(postings)[postings.slots.index(slot)]
            total = total + weight * contribution
        return Hit(key, total, tuple(sorted(matched)))

    def feedback_terms(
        self, hits: Sequence[Hit[KeyT]], count: int, exclude: Collection[str] = ()
    ) -> list[tuple[str, float]]:
        """The ``count`` terms that best characterise the documents of ``hits`` (pseudo-relevance
        feedback). As in the relevance model (RM3, Lavrenko & Croft 2001), each document
        counts in proportion to its first-round score, so a weak hit lends few terms; a term
        scores idf × the score-weighted share of the documents containing it. Weights are
        normalised so that the best term weighs 1."""
        total = sum(hit.score for hit in hits)
        if count <= 0 or total <= 0:
            return []
        share: dict[int, float] = {}
        for hit in hits:
            slot = self._slot_of.get(hit.key)
            if slot is None:
                continue
            for term_id in self._document_terms[slot]:
                share[term_id] = share.get(term_id, 0.0) + hit.score / total
        excluded = {
            excluded_id for term in exclude if (excluded_id := self._term_ids.get(term)) is not None
        }
        scored = [
            (present * self._idf_of(term_id), self._terms[term_id])
            for term_id, present in share.items()
            if term_id not in excluded
        ]
        # Best first; ties by term so that the expansion does not depend on history.
        best = sorted(scored, key=lambda item: (-item[0], item[1]))[:count]
        if not best or best[0][0] <= 0:
            return []
        top = best[0][0]
        return [(term, weight / top) for weight, term in best]

    def document_frequency(self, term: str) -> int:
        """How many documents contain ``term``."""
        term_id = self._term_ids.get(term)
        return 0 if term_id is None else self._document_frequency[term_id]

    def _idf_of(self, term_id: int) -> float:
        return idf(self._document_frequency[term_id], len(self._slot_of))

    def _contributions(self, postings: _Postings) -> array[float]:
        """The postings' tf-and-length parts of BM25 for the current statistics."""
        if postings.version != self._version:
            lengths = self._lengths
            k1_plus_one = self.k1 + 1
            constant = self.k1 * (1 - self.b)
            per_length = self.k1 * self.b * len(self._slot_of) / self._total_length
            postings.contributions = array(
                "d",
                [
                    frequency * k1_plus_one / (frequency + constant + per_length * lengths[slot])
                    for slot, frequency in zip(postings.slots, postings.frequencies, strict=True)
                ],
            )
            postings.version = self._version
        return postings.contributions
