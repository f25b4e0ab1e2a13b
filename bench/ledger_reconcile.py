"""Reconciliation time per 10⁵ entries (leaves ↔ tiles ↔ checkpoints; no chain).

    .venv/bin/python bench/ledger_reconcile.py [--leaves 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from ledger_common import bench_database, bulk_append, exchange_signer

from ledger.note import NoteSigner
from ledger.reconcile import ReconcileOptions, reconcile
from ledger.sealing import seal_all
from market.database import current_engine, migrate


async def run(url: str, leaves: int, signer: NoteSigner) -> None:
    await migrate()
    await bulk_append(url, 0, leaves)
    await seal_all(signer, max_leaves=10_000)  # many checkpoints, as a live log has
    await current_engine().start_connection_pool(min_size=1, max_size=4)
    began = time.perf_counter()
    report = await reconcile(ReconcileOptions(verifier=signer.verifier))
    elapsed = time.perf_counter() - began
    assert report.clean, report.discrepancies[:5]
    per_100k = elapsed * 100_000 / leaves
    print(f"reconciled {report.leaves_checked:,} leaves in {elapsed:.2f} s: {per_100k:.2f} s per "
          f"10⁵, ≈ {per_100k * 10:.0f} s per 10⁶ (target ≤ 60 s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--leaves", type=int, default=100_000)
    arguments = parser.parse_args()
    with bench_database() as url, tempfile.TemporaryDirectory() as data_dir:
        asyncio.run(run(url, arguments.leaves, exchange_signer(url, Path(data_dir))))


if __name__ == "__main__":
    main()
