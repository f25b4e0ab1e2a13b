"""The embedded chain of `market run`: a local anvil node with its state in the data
directory, the ExchangeLedger contract deployed once, and this exchange admitted as a member.

Only used when no `CHAIN_RPC_URL` is configured. The keys are anvil's public development keys
(account 0 administers the consortium, account 1 is this exchange): a local chain only.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from web3 import Web3

from contracts import load_artifact
from market.embedded.anvil import AnvilError, AnvilNode, find_anvil_binary
from market.ledger_wiring import ledger_signer
from market.settings import PROJECT_ROOT, Settings

logger = logging.getLogger("market.embedded")


@contextmanager
def embedded_chain(settings: Settings) -> Iterator[Settings]:
    """Yield settings with anchoring configured against a local anvil (stopped on exit), or
    the settings unchanged when a chain is configured or anvil is not installed."""
    if settings.chain_rpc_url is not None:
        yield settings
        return
    try:
        binary = find_anvil_binary(PROJECT_ROOT)
    except AnvilError as error:
        logger.warning("no embedded chain, anchoring is off: %s", error)
        yield settings
        return
    chain_dir = settings.data_dir / "anvil"
    node = AnvilNode(binary, log_path=chain_dir / "anvil.log")
    node.start(state_path=chain_dir / "state.json")
    try:
        admin_key, exchange_key = node.dev_private_keys[:2]
        address = _contract(node, chain_dir / "contract.json", admin_key, exchange_key,
                            ledger_signer(settings).name)
        yield dataclasses.replace(settings, chain_rpc_url=node.rpc_url,
                                  chain_private_key=exchange_key,
                                  ledger_contract_address=address)
    finally:
        node.stop()


def _contract(node: AnvilNode, record: Path, admin_key: str, exchange_key: str,
              origin: str) -> str:
    """The deployed contract's address: remembered in `record`, deployed when absent."""
    w3 = Web3(Web3.HTTPProvider(node.rpc_url))
    if record.is_file():
        address = json.loads(record.read_text(encoding="utf-8"))["address"]
        # The chain state may have been lost (a killed node writes no state file).
        if w3.eth.get_code(Web3.to_checksum_address(address)):
            return str(address)
    artifact = load_artifact("ExchangeLedger")
    admin = w3.eth.account.from_key(admin_key)
    exchange = w3.eth.account.from_key(exchange_key)
    factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    receipt = w3.eth.wait_for_transaction_receipt(
        factory.constructor().transact({"from": admin.address}))
    contract = factory(address=receipt["contractAddress"])
    w3.eth.wait_for_transaction_receipt(
        contract.functions.admitMember(exchange.address, origin).transact(
            {"from": admin.address}))
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps({"address": contract.address}), encoding="utf-8")
    return str(contract.address)
