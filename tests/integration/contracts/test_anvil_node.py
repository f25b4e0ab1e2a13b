"""The embedded anvil node: start, readiness, dev keys, persistence across restarts, clean stop."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from web3 import Web3

from market.embedded.anvil import (
    DEV_CHAIN_ID,
    AnvilError,
    AnvilNode,
    derive_dev_private_keys,
    find_anvil_binary,
)

pytestmark = pytest.mark.chain

PROJECT_ROOT = Path(__file__).resolve().parents[3]
# Anvil's first default account: a public test key, published in anvil's own start-up banner.
FIRST_DEV_ADDRESS = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"


def test_a_missing_binary_says_to_run_npm_ci(tmp_path):
    with pytest.raises(AnvilError, match="npm ci"):
        find_anvil_binary(tmp_path)


def test_the_dev_keys_are_those_of_the_node_accounts(w3, anvil_node):
    derived_addresses = [
        w3.eth.account.from_key(private_key).address for private_key in anvil_node.dev_private_keys
    ]

    assert derived_addresses == w3.eth.accounts
    assert derived_addresses[0] == FIRST_DEV_ADDRESS
    assert derive_dev_private_keys() == anvil_node.dev_private_keys


def test_the_node_answers_on_localhost_with_its_chain_id(w3, anvil_node):
    assert anvil_node.rpc_url.startswith("http://127.0.0.1:")
    assert w3.eth.chain_id == DEV_CHAIN_ID


def test_the_chain_survives_a_restart_with_a_state_file(tmp_path):
    binary = find_anvil_binary(PROJECT_ROOT)
    state_path = tmp_path / "chain" / "state.json"
    node = AnvilNode(binary, log_path=tmp_path / "anvil.log")

    with node.start(state_path=state_path):
        w3 = Web3(Web3.HTTPProvider(node.rpc_url))
        sender, recipient = w3.eth.accounts[:2]
        transaction_hash = w3.eth.send_transaction({"from": sender, "to": recipient, "value": 1})
        w3.eth.wait_for_transaction_receipt(transaction_hash)
        block_number = w3.eth.get_block_number()
        recipient_balance = w3.eth.get_balance(recipient)

    assert state_path.is_file()
    with node.start(state_path=state_path):
        w3 = Web3(Web3.HTTPProvider(node.rpc_url))
        assert w3.eth.get_block_number() == block_number
        assert w3.eth.get_balance(recipient) == recipient_balance
        assert w3.eth.get_transaction(transaction_hash)["value"] == 1


def test_stop_ends_the_process_and_closes_the_port():
    node = AnvilNode(find_anvil_binary(PROJECT_ROOT)).start()
    rpc_url = node.rpc_url
    log_path = node.log_path

    node.stop()

    assert node.is_running is False
    with pytest.raises(AnvilError, match="not running"):
        _ = node.rpc_url
    with pytest.raises(httpx.ConnectError):
        httpx.post(rpc_url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"})
    # The temporary log lived only as long as the node.
    assert log_path is not None
    assert not log_path.exists()
    node.stop()  # stopping twice is harmless


def test_a_port_taken_by_another_node_is_not_mistaken_for_ours(anvil_node, tmp_path):
    log_path = tmp_path / "anvil.log"
    log_path.write_text(f"Listening on 127.0.0.1:{anvil_node.port}\n")  # from an earlier run
    contender = AnvilNode(find_anvil_binary(PROJECT_ROOT), log_path=log_path)

    with pytest.raises(AnvilError, match="exited with code") as raised:
        contender.start(port=anvil_node.port)

    assert "Address already in use" in str(raised.value)
    assert contender.is_running is False
    assert anvil_node.is_running is True


def test_a_node_that_dies_at_start_fails_with_its_log_tail(tmp_path):
    corrupt_state = tmp_path / "state.json"
    corrupt_state.write_text("this is not a chain state")
    node = AnvilNode(find_anvil_binary(PROJECT_ROOT), log_path=tmp_path / "anvil.log")

    with pytest.raises(AnvilError, match="exited with code") as raised:
        node.start(state_path=corrupt_state)

    assert "log tail" in str(raised.value)
    assert node.is_running is False


def test_starting_a_running_node_is_refused(anvil_node):
    with pytest.raises(AnvilError, match="already running"):
        anvil_node.start()
