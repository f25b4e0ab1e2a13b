"""Solidity contracts of the consortium ledger: the loader of their committed build artifacts.

The artifacts under ``contracts/artifacts`` are written by ``node contracts/build.mjs`` with the
pinned compiler and checked against the sources by ``node contracts/build.mjs --check``; this
module only reads them. It imports nothing from the rest of the project.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["ContractArtifact", "load_artifact"]

_ARTIFACTS_DIRECTORY = Path(__file__).resolve().parent / "artifacts"


@dataclass(frozen=True, slots=True)
class ContractArtifact:
    """The ABI and bytecode of one compiled contract, as the pinned build produced them."""

    name: str
    abi: list[dict[str, Any]]
    bytecode: str
    deployed_bytecode: str
    compiler: str
    evm_version: str
    source_sha256: str


def load_artifact(name: str = "ExchangeLedger") -> ContractArtifact:
    """Read ``contracts/artifacts/<name>.json``; a fresh copy each call, free to mutate."""
    # The name becomes a file name: only a Solidity identifier may reach the file system.
    if not name.isidentifier():
        raise ValueError(f"not a contract name: {name!r}")
    path = _ARTIFACTS_DIRECTORY / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"no artifact for contract {name!r} at {path}; run `node contracts/build.mjs`"
        )
    document = json.loads(path.read_text(encoding="utf-8"))
    abi = document["abi"]
    if not isinstance(abi, list) or not all(isinstance(entry, dict) for entry in abi):
        raise ValueError(f"{path}: 'abi' is not a list of ABI entries")
    return ContractArtifact(
        name=_text_field(document, "contractName", path),
        abi=abi,
        bytecode=_hex_field(document, "bytecode", path),
        deployed_bytecode=_hex_field(document, "deployedBytecode", path),
        compiler=_text_field(document, "compiler", path),
        evm_version=_text_field(document, "evmVersion", path),
        source_sha256=_text_field(document, "sourceSha256", path),
    )


def _text_field(document: dict[str, Any], key: str, path: Path) -> str:
    value = document.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{path}: {key!r} is missing or not a string")
    return value


def _hex_field(document: dict[str, Any], key: str, path: Path) -> str:
    value = _text_field(document, key, path)
    if not value.startswith("0x") or len(value) % 2 != 0:
        raise ValueError(f"{path}: {key!r} is not 0x-prefixed hex")
    return value
