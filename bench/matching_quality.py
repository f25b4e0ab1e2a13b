"""Quality of the demand → product matcher on the labelled set in bench/data/matching/.

Run as ``.venv/bin/python bench/matching_quality.py``. For each demand the matcher returns its
top 10 products (hard filters, then BM25); the figures are averaged over the demands:

* recall@10 — relevant (grade ≥ 2) products in the top 10, divided by min(10, relevant
  products): 1.0 when the top 10 are all relevant or hold every relevant product. Target ≥ 0.9.
* recall@10 (grade 3) — the same for the best answers only.
* nDCG@10 — gain 2^grade − 1, log2 discount, normalised by the ideal ordering of every judged
  product (grades 1–3).
* MRR — reciprocal rank of the first relevant (grade ≥ 2) product.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from pathlib import Path

from make_matching_set import OUTPUT, demand, listed_product, read_jsonl

from market.trading.matching import DemandMatcher, ProductMatcher

CUTOFF = 10
RELEVANT = 2


def dcg(gains: list[int]) -> float:
    return sum((2**gain - 1) / math.log2(rank + 2) for rank, gain in enumerate(gains))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=OUTPUT)
    arguments = parser.parse_args()
    product_rows = read_jsonl(arguments.data / "products.jsonl")
    demand_rows = read_jsonl(arguments.data / "demands.jsonl")
    judgements = {
        row["demand"]: row["grades"] for row in read_jsonl(arguments.data / "qrels.jsonl")
    }

    started = time.perf_counter()
    # The labelled demands are the open demands whose words weigh each demand's terms.
    matcher = ProductMatcher((listed_product(row) for row in product_rows),
                             demands=DemandMatcher(demand(row) for row in demand_rows))
    build_s = time.perf_counter() - started

    recalls, top_recalls, ndcgs, reciprocal_ranks = [], [], [], []
    misses: list[tuple[float, str, str]] = []
    for row in demand_rows:
        grades: dict[str, int] = judgements[row["id"]]
        ranked = [match.product_id for match in matcher.top_products(demand(row), CUTOFF)]
        gains = [grades.get(product_id, 0) for product_id in ranked]
        relevant = sum(1 for value in grades.values() if value >= RELEVANT)
        best = sum(1 for value in grades.values() if value == 3)
        recalls.append(sum(1 for gain in gains if gain >= RELEVANT) / min(CUTOFF, relevant))
        if best:
            top_recalls.append(sum(1 for gain in gains if gain == 3) / min(CUTOFF, best))
        ideal = dcg(sorted(grades.values(), reverse=True)[:CUTOFF])
        ndcgs.append(dcg(gains) / ideal)
        first = next((rank for rank, gain in enumerate(gains, 1) if gain >= RELEVANT), None)
        reciprocal_ranks.append(0.0 if first is None else 1 / first)
        misses.append((recalls[-1], row["id"], row["title"]))

    print(f"labelled set: {len(product_rows)} products, {len(demand_rows)} demands "
          f"(index built in {build_s:.1f} s)")  # fmt: skip
    print(f"recall@{CUTOFF} (grade ≥ {RELEVANT}): {statistics.fmean(recalls):.3f}  (target ≥ 0.9)")
    print(f"recall@{CUTOFF} (grade 3, {len(top_recalls)} demands): "
          f"{statistics.fmean(top_recalls):.3f}")  # fmt: skip
    print(f"nDCG@{CUTOFF}: {statistics.fmean(ndcgs):.3f}")
    print(f"MRR (grade ≥ {RELEVANT}): {statistics.fmean(reciprocal_ranks):.3f}")
    print("weakest demands (recall@10, id, title):")
    for recall, demand_id, title in sorted(misses)[:5]:
        print(f"  {recall:.2f}  {demand_id}  {title}")


if __name__ == "__main__":
    main()
