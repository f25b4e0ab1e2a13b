"""Gas used by ExchangeLedger on a fresh anvil node: per anchor and per registration code.

Run as ``.venv/bin/python bench/contract_gas.py`` after ``npm ci``. Gas is deterministic for a
given compiler, EVM version and hardfork, so these figures are comparable across runs and
machines; they include the 21,000 base cost of each transaction.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from eth_typing import ChecksumAddress
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractConstructor, ContractFunction
from web3.types import TxReceipt

from contracts import load_artifact
from market.embedded.anvil import AnvilNode, find_anvil_binary

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ANCHOR_GAS_BUDGET = 60_000
BATCH_SIZES = (1, 10, 50, 100)
TREE_SIZES = (1, 1_000, 1_000_000_000, 2**63)


def digest(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()


def send(
    w3: Web3, function: ContractFunction | ContractConstructor, sender: ChecksumAddress
) -> TxReceipt:
    receipt = w3.eth.wait_for_transaction_receipt(function.transact({"from": sender}))
    if receipt["status"] != 1:
        raise RuntimeError(f"transaction {receipt['transactionHash'].to_0x_hex()} reverted")
    return receipt


def deploy(w3: Web3, admin: ChecksumAddress) -> Contract:
    artifact = load_artifact()
    factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    receipt = send(w3, factory.constructor(), admin)
    print(
        f"deployment ({artifact.compiler}, evmVersion {artifact.evm_version}):"
        f" {receipt['gasUsed']:,} gas"
    )
    return factory(address=receipt["contractAddress"])


def measure_anchors(w3: Web3, ledger: Contract, members: list[ChecksumAddress]) -> None:
    print(f"\nanchor (budget {ANCHOR_GAS_BUDGET:,} gas):")
    print(f"  {'first tree size':>25}  {'first':>8}  {'steady':>8}  {'steady/budget':>13}")
    # Each tree size gets its own member, so "first" is truly that member's first anchor.
    for member, tree_size in zip(members, TREE_SIZES, strict=True):
        first = send(w3, ledger.functions.anchor(tree_size, digest(f"{tree_size}")), member)
        steady_gas = [
            send(
                w3, ledger.functions.anchor(tree_size + step, digest(f"{tree_size + step}")), member
            )["gasUsed"]
            for step in (1, 2, 3)
        ]
        steady = max(steady_gas)
        print(
            f"  {tree_size:>25,}  {first['gasUsed']:>8,}  {steady:>8,}"
            f"  {steady / ANCHOR_GAS_BUDGET:>13.2f}"
        )


def measure_codes(w3: Web3, ledger: Contract, member: ChecksumAddress) -> None:
    print("\nregistration codes:")
    single = send(
        w3, ledger.functions.registerCode("GZ-DR-2025-000000", 0, digest("leaf 0")), member
    )
    print(f"  registerCode, one code: {single['gasUsed']:>8,} gas")
    next_leaf_index = 1
    for batch_size in BATCH_SIZES:
        leaf_indexes = list(range(next_leaf_index, next_leaf_index + batch_size))
        codes = [f"GZ-DR-2025-{leaf_index:06d}" for leaf_index in leaf_indexes]
        leaf_hashes = [digest(f"leaf {leaf_index}") for leaf_index in leaf_indexes]
        receipt = send(w3, ledger.functions.registerCodes(codes, leaf_indexes, leaf_hashes), member)
        next_leaf_index += batch_size
        per_code = receipt["gasUsed"] / batch_size
        print(
            f"  registerCodes, batch of {batch_size:>3}: {receipt['gasUsed']:>10,} gas,"
            f" {per_code:>9,.0f} per code ({per_code / single['gasUsed']:.2f} of a single)"
        )


def main() -> None:
    with AnvilNode(find_anvil_binary(PROJECT_ROOT)) as node:
        w3 = Web3(Web3.HTTPProvider(node.rpc_url))
        admin, *members = w3.eth.accounts[: 1 + len(TREE_SIZES)]
        ledger = deploy(w3, admin)
        for index, member in enumerate(members):
            send(w3, ledger.functions.admitMember(member, f"exchange-{index}.example/log"), admin)
        measure_anchors(w3, ledger, members)
        measure_codes(w3, ledger, members[0])


if __name__ == "__main__":
    main()
