"""A real anvil node for the ledger's chain tests, with a fresh ExchangeLedger per test on
which the exchange under test (dev account 1) is an admitted member."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from web3 import Web3
from web3.contract import Contract

from contracts import load_artifact
from ledger.chain import Web3ChainGateway
from market.embedded.anvil import AnvilNode, find_anvil_binary

PROJECT_ROOT = Path(__file__).resolve().parents[3]
ORIGIN = "exchange.test/ledger"


@dataclass(frozen=True)
class Chain:
    node: AnvilNode
    w3: Web3
    contract: Contract
    exchange_key: str
    peer_key: str

    @property
    def exchange(self) -> str:
        return Web3().eth.account.from_key(self.exchange_key).address

    @property
    def peer(self) -> str:
        return Web3().eth.account.from_key(self.peer_key).address


@pytest.fixture(scope="session")
def ledger_anvil() -> Iterator[AnvilNode]:
    with AnvilNode(find_anvil_binary(PROJECT_ROOT)) as node:
        yield node


@pytest.fixture
def chain(ledger_anvil: AnvilNode) -> Chain:
    w3 = Web3(Web3.HTTPProvider(ledger_anvil.rpc_url))
    admin, exchange, peer = w3.eth.accounts[:3]
    artifact = load_artifact("ExchangeLedger")
    factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    receipt = w3.eth.wait_for_transaction_receipt(factory.constructor().transact({"from": admin}))
    contract = factory(address=receipt["contractAddress"])
    for member, origin in ((exchange, ORIGIN), (peer, "peer.test/ledger")):
        w3.eth.wait_for_transaction_receipt(
            contract.functions.admitMember(member, origin).transact({"from": admin}))
    keys = ledger_anvil.dev_private_keys
    return Chain(ledger_anvil, w3, contract, keys[1], keys[2])


@pytest.fixture
async def gateway(chain: Chain) -> AsyncIterator[Web3ChainGateway]:
    gateway = Web3ChainGateway(chain.node.rpc_url, chain.exchange_key, chain.contract.address)
    yield gateway
    await gateway.close()
