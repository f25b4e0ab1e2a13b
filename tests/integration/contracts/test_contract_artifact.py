"""The committed artifact and its loader: what is deployed is what the pinned build produced."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from contracts import load_artifact

CONTRACTS_DIRECTORY = Path(__file__).resolve().parents[3] / "contracts"


def test_the_artifact_was_built_from_the_current_source():
    artifact = load_artifact()
    source = (CONTRACTS_DIRECTORY / "ExchangeLedger.sol").read_bytes()

    # `node contracts/build.mjs --check` compares the whole artifact; this catches an edited
    # source without node at hand.
    assert artifact.source_sha256 == hashlib.sha256(source).hexdigest()
    assert artifact.name == "ExchangeLedger"
    assert artifact.evm_version == "cancun"
    assert artifact.compiler.startswith("0.8.")
    assert {entry.get("name") for entry in artifact.abi} >= {
        "anchor",
        "registerCode",
        "registerCodes",
        "lookupCode",
        "anchoredRoot",
        "Anchored",
        "CodeRegistered",
        "TreeSizeNotGrowing",
    }


def test_each_load_returns_an_independent_copy():
    first = load_artifact()
    first.abi.clear()

    assert load_artifact().abi


@pytest.mark.parametrize("name", ["../package", "ExchangeLedger.json", ""])
def test_a_name_that_is_not_a_contract_identifier_is_refused(name):
    with pytest.raises(ValueError, match="not a contract name"):
        load_artifact(name)


def test_an_unknown_contract_names_the_build_command():
    with pytest.raises(FileNotFoundError, match=r"node contracts/build\.mjs"):
        load_artifact("NoSuchContract")


@pytest.mark.chain
def test_the_deployed_code_is_the_artifact_deployed_bytecode(w3, ledger, artifact):
    # The contract has no immutables, so the runtime code on chain equals the artifact byte
    # for byte; a peer can check a deployment against the committed artifact the same way.
    assert w3.eth.get_code(ledger.address).to_0x_hex() == artifact.deployed_bytecode
