"""Fixtures for the consortium ledger contract on a real anvil node.

The chain is shared by the session; each test deploys its own contract, so tests never see
each other's members, anchors or codes. The chain follows web3.py's own contract tests:
``w3 → ledger_factory → ledger``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import eth_abi
import pytest
from eth_typing import ChecksumAddress
from eth_utils import function_abi_to_4byte_selector, get_abi_input_types, to_checksum_address
from hexbytes import HexBytes
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractCustomError
from web3.types import TxReceipt

from contracts import ContractArtifact, load_artifact
from market.embedded.anvil import AnvilNode, find_anvil_binary

PROJECT_ROOT = Path(__file__).resolve().parents[3]


class Revert(NamedTuple):
    """A custom error decoded from revert data with the contract's ABI."""

    name: str
    args: tuple[Any, ...]


class Origins(NamedTuple):
    """The log origins (C2SP tlog-checkpoint origin lines) the two members are admitted with."""

    exchange_a: str
    exchange_b: str


class Accounts(NamedTuple):
    admin: ChecksumAddress
    exchange_a: ChecksumAddress
    exchange_b: ChecksumAddress
    outsider: ChecksumAddress


@pytest.fixture(scope="session")
def anvil_node() -> Iterator[AnvilNode]:
    with AnvilNode(find_anvil_binary(PROJECT_ROOT)) as node:
        yield node


@pytest.fixture(scope="session")
def w3(anvil_node: AnvilNode) -> Web3:
    return Web3(Web3.HTTPProvider(anvil_node.rpc_url))


@pytest.fixture(scope="session")
def accounts(w3: Web3) -> Accounts:
    # anvil's funded accounts are unlocked, so each can send through eth_sendTransaction.
    admin, exchange_a, exchange_b, outsider = w3.eth.accounts[:4]
    return Accounts(admin, exchange_a, exchange_b, outsider)


@pytest.fixture(scope="session")
def origins() -> Origins:
    return Origins(exchange_a="ledger.gzdex.example/log", exchange_b="数据交易所.example/账本")


@pytest.fixture(scope="session")
def artifact() -> ContractArtifact:
    return load_artifact("ExchangeLedger")


@pytest.fixture(scope="session")
def ledger_factory(w3: Web3, artifact: ContractArtifact) -> type[Contract]:
    return w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)


@pytest.fixture
def ledger(w3: Web3, ledger_factory: type[Contract], accounts: Accounts) -> Contract:
    transaction_hash = ledger_factory.constructor().transact({"from": accounts.admin})
    receipt = w3.eth.wait_for_transaction_receipt(transaction_hash)
    assert receipt["status"] == 1
    return ledger_factory(address=receipt["contractAddress"])


@pytest.fixture
def send(w3: Web3) -> Callable[[ContractFunction, ChecksumAddress], TxReceipt]:
    """Send a call as ``sender`` and return its receipt, which must show success.

    Gas is left for web3 to estimate, so a call that would revert raises before it is sent
    instead of being mined with status 0.
    """

    def send_as(function: ContractFunction, sender: ChecksumAddress) -> TxReceipt:
        receipt = w3.eth.wait_for_transaction_receipt(function.transact({"from": sender}))
        assert receipt["status"] == 1
        return receipt

    return send_as


@pytest.fixture
def member_ledger(
    ledger: Contract,
    accounts: Accounts,
    origins: Origins,
    send: Callable[[ContractFunction, ChecksumAddress], TxReceipt],
) -> Contract:
    """A ledger on which exchanges A and B are admitted and active."""
    send(ledger.functions.admitMember(accounts.exchange_a, origins.exchange_a), accounts.admin)
    send(ledger.functions.admitMember(accounts.exchange_b, origins.exchange_b), accounts.admin)
    return ledger


@pytest.fixture(scope="session")
def reverted(artifact: ContractArtifact) -> Callable[[ContractFunction, ChecksumAddress], Revert]:
    """Send a call that must revert with a custom error, and decode that error."""
    errors_by_selector = {
        bytes(function_abi_to_4byte_selector(entry)): entry
        for entry in artifact.abi
        if entry["type"] == "error"
    }

    def send_expecting_revert(function: ContractFunction, sender: ChecksumAddress) -> Revert:
        with pytest.raises(ContractCustomError) as raised:
            function.transact({"from": sender})
        assert isinstance(raised.value.data, str)
        data = HexBytes(raised.value.data)
        error_abi = errors_by_selector[bytes(data[:4])]
        types = get_abi_input_types(error_abi)
        values = eth_abi.decode(types, data[4:])
        return Revert(
            error_abi["name"],
            tuple(
                to_checksum_address(value) if abi_type == "address" else value
                for abi_type, value in zip(types, values, strict=True)
            ),
        )

    return send_expecting_revert
