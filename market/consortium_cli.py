"""`market consortium …`: the consortium admin's acts on the shared ExchangeLedger contract
(issue 7 §1): deploy it, admit a member exchange under its log origin, suspend or reinstate
one, and list the members. The admin's key comes from CONSORTIUM_ADMIN_KEY, never a flag, so
it stays out of shell histories and process lists."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from eth_account import Account
from web3 import Web3
from web3.exceptions import ContractLogicError, Web3Exception

from contracts import load_artifact
from market.settings import Settings

ADMIN_KEY_VARIABLE = "CONSORTIUM_ADMIN_KEY"
MEMBER_STATUS = {0: "none", 1: "active", 2: "suspended"}


class ConsortiumError(Exception):
    """An admin act could not be done; the message says why."""


def add_consortium_commands(commands: Any) -> None:
    consortium = commands.add_parser(
        "consortium", help="the consortium admin's acts on the ExchangeLedger contract")
    actions = consortium.add_subparsers(required=True, metavar="ACTION")
    actions.add_parser("deploy", help="deploy a new ExchangeLedger; prints its address "
                                      "(the admin is CONSORTIUM_ADMIN_KEY's account)"
                       ).set_defaults(command=deploy_command)
    admit = actions.add_parser("admit", help="admit a member exchange under its log origin")
    admit.add_argument("address", help="the exchange's chain account (0x…)")
    admit.add_argument("origin", help="the exchange's log origin, as in its signed profile")
    admit.set_defaults(command=admit_command)
    for name, function in (("suspend", "suspendMember"), ("reinstate", "reinstateMember")):
        act = actions.add_parser(name, help=f"{name} a member exchange")
        act.add_argument("address")
        act.set_defaults(command=member_act_command, function=function)
    actions.add_parser("members", help="list the members and their latest anchors"
                       ).set_defaults(command=members_command)


def _web3(settings: Settings) -> Web3:
    if settings.chain_rpc_url is None:
        raise ConsortiumError("CHAIN_RPC_URL is not set")
    return Web3(Web3.HTTPProvider(settings.chain_rpc_url, request_kwargs={"timeout": 30}))


def _admin_key() -> str:
    key = os.environ.get(ADMIN_KEY_VARIABLE, "").strip()
    if not key:
        raise ConsortiumError(f"{ADMIN_KEY_VARIABLE} is not set")
    return key


def _contract(w3: Web3, settings: Settings) -> Any:
    if settings.ledger_contract_address is None:
        raise ConsortiumError("LEDGER_CONTRACT_ADDRESS is not set")
    return w3.eth.contract(address=Web3.to_checksum_address(settings.ledger_contract_address),
                           abi=load_artifact("ExchangeLedger").abi)


def _send(w3: Web3, call: Any, key: str) -> Any:
    """Sign locally and send: the node holds no key of ours. Returns the receipt."""
    account = Account.from_key(key)
    try:
        transaction = call.build_transaction({
            "from": account.address, "nonce": w3.eth.get_transaction_count(account.address),
            "chainId": w3.eth.chain_id})
    except ContractLogicError as error:
        raise ConsortiumError(f"the contract refused: {error}") from error
    signed = account.sign_transaction(transaction)
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(signed.raw_transaction), timeout=120)
    if receipt["status"] != 1:
        raise ConsortiumError(f"transaction {receipt['transactionHash'].hex()} reverted")
    return receipt


def _run(settings: Settings, act: Any) -> int:
    try:
        message = act(_web3(settings))
    except (ConsortiumError, Web3Exception, ValueError) as error:
        print(f"market consortium: {error}", file=sys.stderr)
        return 1
    print(message)
    return 0


def deploy_command(settings: Settings, _: argparse.Namespace) -> int:
    def deploy(w3: Web3) -> str:
        artifact = load_artifact("ExchangeLedger")
        factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
        receipt = _send(w3, factory.constructor(), _admin_key())
        return str(receipt["contractAddress"])

    return _run(settings, deploy)


def admit_command(settings: Settings, arguments: argparse.Namespace) -> int:
    def admit(w3: Web3) -> str:
        address = Web3.to_checksum_address(arguments.address)
        _send(w3, _contract(w3, settings).functions.admitMember(address, arguments.origin),
              _admin_key())
        return f"admitted {address} as {arguments.origin}"

    return _run(settings, admit)


def member_act_command(settings: Settings, arguments: argparse.Namespace) -> int:
    def act(w3: Web3) -> str:
        address = Web3.to_checksum_address(arguments.address)
        function = getattr(_contract(w3, settings).functions, arguments.function)
        _send(w3, function(address), _admin_key())
        return f"{arguments.function} {address}: done"

    return _run(settings, act)


def members_command(settings: Settings, _: argparse.Namespace) -> int:
    def members(w3: Web3) -> str:
        contract = _contract(w3, settings)
        lines = []
        for index in range(contract.functions.memberCount().call()):
            address = contract.functions.memberAt(index).call()
            status, latest, _admitted_at, origin = contract.functions.members(address).call()
            lines.append(f"{address} {MEMBER_STATUS.get(int(status), status)} {origin} "
                         f"anchored up to {latest}")
        return "\n".join(lines) or "no members"

    return _run(settings, members)
