"""The log's signing key: from settings, or generated once into the data directory.

The key's name is the log's origin (c2sp.org/tlog-checkpoint: the origin SHOULD match the key
name), so the origin of an existing log is pinned by its key: a changed origin is refused
instead of silently starting a second log under the same key.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from ledger.note import NoteError, NoteSigner

KEY_FILE_MODE = 0o600


class SigningKeyError(ValueError):
    """The configured signing key is unusable or does not match the configured origin."""


def load_signer(*, origin: str | None, signing_key: str | None, key_path: Path,
                default_origin: str) -> NoteSigner:
    """The signer for `origin` (None: the key file's name, else `default_origin` when the key
    is generated). `signing_key` is a signed-note private key (`PRIVATE+KEY+…`)."""
    return _load_signer(origin, signing_key, key_path, default_origin)


@lru_cache(maxsize=8)
def _load_signer(origin: str | None, signing_key: str | None, key_path: Path,
                 default_origin: str) -> NoteSigner:
    if signing_key is not None:
        signer = _parse(signing_key, "MARKET_LEDGER_SIGNING_KEY")
    elif key_path.is_file():
        signer = _parse(key_path.read_text(encoding="ascii").strip(), str(key_path))
    else:
        signer = NoteSigner.generate(origin or default_origin)
        write_new_key_file(key_path, signer.to_skey())
    if origin is not None and signer.name != origin:
        raise SigningKeyError(
            f"the ledger signing key is named {signer.name!r} but MARKET_LEDGER_ORIGIN is "
            f"{origin!r}: a log's origin is its key's name and cannot change")
    return signer


def write_new_key_file(key_path: Path, private_key_text: str) -> None:
    """Write a freshly generated private key, readable by its owner only."""
    key_path.parent.mkdir(parents=True, exist_ok=True)
    # O_EXCL: two processes starting at once must not each write a different key.
    descriptor = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_FILE_MODE)
    with os.fdopen(descriptor, "w", encoding="ascii") as key_file:
        key_file.write(private_key_text + "\n")


def _parse(text: str, source: str) -> NoteSigner:
    try:
        return NoteSigner.from_skey(text)
    except (NoteError, ValueError) as error:
        # The message names the source, never the key material.
        raise SigningKeyError(f"{source} is not a signed-note Ed25519 private key") from error
