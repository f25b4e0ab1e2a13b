"""The witness's cosigning key: from settings, or generated once into the data directory.

It is a key of its own, never the log's signing key: tlog-cosignature's Ed25519 message does
not name the cosigner, and a witness statement must not be confusable with a log's signature.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from ledger.cosignature import CosignatureError, Cosigner
from ledger.keys import SigningKeyError, write_new_key_file


def load_cosigner(*, signing_key: str | None, key_path: Path, default_name: str) -> Cosigner:
    """The cosigner from `signing_key` (a `PRIVATE+KEY+…` key of type 0x04), else from the key
    file, else a new key named `default_name` written to the key file."""
    return _load_cosigner(signing_key, key_path, default_name)


@lru_cache(maxsize=8)
def _load_cosigner(signing_key: str | None, key_path: Path, default_name: str) -> Cosigner:
    if signing_key is not None:
        return _parse(signing_key, "MARKET_WITNESS_SIGNING_KEY")
    if key_path.is_file():
        return _parse(key_path.read_text(encoding="ascii"), str(key_path))
    cosigner = Cosigner.generate(default_name)
    write_new_key_file(key_path, cosigner.to_skey())
    return cosigner


def _parse(text: str, source: str) -> Cosigner:
    try:
        return Cosigner.from_skey(text)
    except (CosignatureError, ValueError) as error:
        # The message names the source, never the key material.
        raise SigningKeyError(f"{source} is not an Ed25519 cosigner private key "
                              "(signature type 0x04)") from error
