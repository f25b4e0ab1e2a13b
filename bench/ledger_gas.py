"""Gas per anchor and per registration code as the exchange sends them (through the outbox
and the web3 gateway) on a fresh anvil node.

    .venv/bin/python bench/ledger_gas.py
"""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
from pathlib import Path

from ledger_common import bench_database, bulk_append, exchange_signer
from web3 import Web3

from contracts import load_artifact
from ledger.anchoring import run_anchoring
from ledger.chain import Web3ChainGateway, queue_code_registration
from ledger.note import NoteSigner
from ledger.sealing import seal_all
from market.database import current_engine, migrate
from market.embedded.anvil import AnvilNode, find_anvil_binary

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def deploy(node: AnvilNode, origin: str) -> str:
    w3 = Web3(Web3.HTTPProvider(node.rpc_url))
    admin, exchange = w3.eth.accounts[:2]
    artifact = load_artifact()
    factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    receipt = w3.eth.wait_for_transaction_receipt(factory.constructor().transact({"from": admin}))
    contract = factory(address=receipt["contractAddress"])
    w3.eth.wait_for_transaction_receipt(
        contract.functions.admitMember(exchange, origin).transact({"from": admin}))
    return str(contract.address)


async def run(url: str, node: AnvilNode, signer: NoteSigner) -> None:
    await migrate()
    gateway = Web3ChainGateway(node.rpc_url, node.dev_private_keys[1], deploy(node, signer.name))
    size = 0
    for grow_by in (1, 1_000, 100_000):
        await bulk_append(url, size, grow_by)
        size += grow_by
        await seal_all(signer)
        await run_anchoring(gateway)
    for batch in (1, 10, 50):
        async with current_engine().transaction():
            for number in range(batch):
                code = f"BENCH-A-2026-{size + number:08d}-X"
                await queue_code_registration(code, number, hashlib.sha256(code.encode()).digest())
        await run_anchoring(gateway, codes_per_transaction=batch)
        size += batch
    rows = await current_engine().run_ddl(
        "SELECT t.purpose, t.gas_used, a.tree_size, "
        "(SELECT count(*) FROM ledger_code_registrations c WHERE c.transaction_id = t.id) AS codes "
        "FROM ledger_chain_transactions t LEFT JOIN ledger_anchors a ON a.transaction_id = t.id "
        "ORDER BY t.id")
    for row in rows:
        if row["purpose"] == "anchor":
            print(f"anchor at tree size {row['tree_size']:>9,}: {row['gas_used']:,} gas "
                  "(target ≤ 60,000)")
        else:
            codes = row["codes"]
            print(f"registerCodes × {codes:>2}: {row['gas_used']:,} gas, "
                  f"{row['gas_used'] // codes:,} per code")
    await gateway.close()


def main() -> None:
    with (AnvilNode(find_anvil_binary(PROJECT_ROOT)) as node, bench_database() as url,
          tempfile.TemporaryDirectory() as data_dir):
        asyncio.run(run(url, node, exchange_signer(url, Path(data_dir))))


if __name__ == "__main__":
    main()
