"""Checkpoint cosignatures (c2sp.org/tlog-cosignature, Ed25519 `cosignature/v1`).

A cosignature is one more signature line on a checkpoint's signed note:

    — <cosigner name> base64(key ID ‖ u64 big-endian timestamp ‖ Ed25519 signature)

over the message `cosignature/v1\\n` `time <timestamp>\\n` followed by the checkpoint's whole
note text. Its key ID takes the signature type 0x04, so a cosigner's key can never be mistaken
for a log's (type 0x01) even under the same name; and its keys are written in the signed-note
vkey / skey forms with that type byte.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from ledger.note import (
    ED25519_SIGNATURE_BYTES,
    SIGNATURE_LINE_PREFIX,
    NoteError,
    parse_signature_line,
    private_key_text,
    split_private_key,
    split_signed_note,
    split_typed_key,
    typed_key_id,
    validate_key_name,
    verifier_key_text,
)

# tlog-cosignature: "vkeys with signature type 0x04" for Ed25519 cosigners.
COSIGNATURE_KEY_TYPE = 0x04
COSIGNATURE_HEADER = "cosignature/v1"
TIMESTAMP_BYTES = 8
# tlog-cosignature: the timestamp "MUST NOT exceed 2^63 - 1".
MAX_TIMESTAMP = 2**63 - 1


class CosignatureError(ValueError):
    """A cosigner key is malformed, or a cosignature by a trusted cosigner does not verify."""


def cosigned_message(checkpoint_text: str, timestamp: int) -> bytes:
    """The bytes an Ed25519 cosigner signs (tlog-cosignature, "Ed25519 signed message")."""
    if not checkpoint_text.endswith("\n"):
        raise CosignatureError("checkpoint text must end in a newline")
    _require_timestamp(timestamp)
    return f"{COSIGNATURE_HEADER}\ntime {timestamp}\n{checkpoint_text}".encode()


def _require_timestamp(timestamp: int) -> None:
    if isinstance(timestamp, bool) or not 0 <= timestamp <= MAX_TIMESTAMP:
        raise CosignatureError(f"cosignature timestamp {timestamp} is outside 0…2^63−1")


@dataclass(frozen=True)
class Cosignature:
    """One timestamped cosignature, as carried on a signature line."""

    name: str
    key_id: bytes
    timestamp: int
    signature: bytes

    @property
    def line(self) -> str:
        """The note signature line, with its final newline."""
        payload = self.key_id + self.timestamp.to_bytes(TIMESTAMP_BYTES, "big") + self.signature
        return f"{SIGNATURE_LINE_PREFIX}{self.name} {base64.b64encode(payload).decode('ascii')}\n"


@dataclass(frozen=True)
class CosignatureVerifier:
    """A cosigner's name and Ed25519 public key."""

    name: str
    public_key: Ed25519PublicKey = field(repr=False)
    key_id: bytes = field(init=False)

    def __post_init__(self) -> None:
        validate_key_name(self.name)
        object.__setattr__(self, "key_id", typed_key_id(self.name, COSIGNATURE_KEY_TYPE,
                                                        self.public_key_bytes))

    @property
    def public_key_bytes(self) -> bytes:
        return self.public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)

    def to_vkey(self) -> str:
        return verifier_key_text(self.name, self.key_id, COSIGNATURE_KEY_TYPE,
                                 self.public_key_bytes)

    @classmethod
    def from_vkey(cls, vkey: str) -> CosignatureVerifier:
        try:
            name, key_id, key = split_typed_key(vkey.strip(), COSIGNATURE_KEY_TYPE, "cosigner")
        except NoteError as error:
            raise CosignatureError(f"cosigner key: {error}") from error
        verifier = cls(name, Ed25519PublicKey.from_public_bytes(key))
        if verifier.key_id != key_id:
            raise CosignatureError(f"cosigner key ID {key_id.hex()} does not match the name "
                                   "and key")
        return verifier

    def verify(self, checkpoint_text: str, cosignature: Cosignature) -> bool:
        if (cosignature.name, cosignature.key_id) != (self.name, self.key_id):
            return False
        try:
            self.public_key.verify(cosignature.signature,
                                   cosigned_message(checkpoint_text, cosignature.timestamp))
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class Cosigner:
    """A witness's cosigning key: a name and an Ed25519 private key of its own."""

    name: str
    private_key: Ed25519PrivateKey = field(repr=False)

    def __post_init__(self) -> None:
        validate_key_name(self.name)

    @classmethod
    def generate(cls, name: str) -> Cosigner:
        return cls(name, Ed25519PrivateKey.generate())

    @property
    def verifier(self) -> CosignatureVerifier:
        return CosignatureVerifier(self.name, self.private_key.public_key())

    def cosign(self, checkpoint_text: str, timestamp: int) -> Cosignature:
        signature = self.private_key.sign(cosigned_message(checkpoint_text, timestamp))
        return Cosignature(self.name, self.verifier.key_id, timestamp, signature)

    def to_skey(self) -> str:
        seed = self.private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        return private_key_text(self.name, self.verifier.key_id, COSIGNATURE_KEY_TYPE, seed)

    @classmethod
    def from_skey(cls, skey: str) -> Cosigner:
        try:
            name, key_id, seed = split_private_key(skey.strip(), COSIGNATURE_KEY_TYPE)
        except NoteError as error:
            raise CosignatureError(f"cosigner private key: {error}") from error
        cosigner = cls(name, Ed25519PrivateKey.from_private_bytes(seed))
        if cosigner.verifier.key_id != key_id:
            raise CosignatureError(f"cosigner key ID {key_id.hex()} does not match the name "
                                   "and key")
        return cosigner


def parse_cosignature_line(line: str) -> Cosignature:
    """A signature line read as a cosignature (only meaningful for a cosigner's key ID)."""
    try:
        name, key_id, payload = parse_signature_line(line.removesuffix("\n"))
    except NoteError as error:
        raise CosignatureError(str(error)) from error
    if len(payload) != TIMESTAMP_BYTES + ED25519_SIGNATURE_BYTES:
        raise CosignatureError(f"cosignature by {name} must hold a key ID, an 8-byte timestamp "
                               "and a 64-byte signature")
    timestamp = int.from_bytes(payload[:TIMESTAMP_BYTES], "big")
    _require_timestamp(timestamp)
    return Cosignature(name, key_id, timestamp, payload[TIMESTAMP_BYTES:])


def verified_cosignatures(note: str, verifiers: Sequence[CosignatureVerifier],
                          ) -> tuple[str, list[Cosignature]]:
    """The note's text and the cosignatures on it by `verifiers`, each checked.

    As signed-note asks of any verifier: lines by other keys (the log's own signature, unknown
    cosigners) are ignored, and a line by a trusted cosigner that fails to verify rejects the
    whole note rather than being skipped.
    """
    try:
        text, lines = split_signed_note(note)
    except NoteError as error:
        raise CosignatureError(str(error)) from error
    trusted = {(verifier.name, verifier.key_id): verifier for verifier in verifiers}
    found: dict[tuple[str, bytes], Cosignature] = {}
    for line in lines:
        try:
            name, key_id, _ = parse_signature_line(line)
        except NoteError as error:
            raise CosignatureError(str(error)) from error
        verifier = trusted.get((name, key_id))
        if verifier is None or (name, key_id) in found:
            continue
        cosignature = parse_cosignature_line(line)
        if not verifier.verify(text, cosignature):
            raise CosignatureError(f"invalid cosignature by trusted cosigner "
                                   f"{name}+{key_id.hex()}")
        found[name, key_id] = cosignature
    return text, list(found.values())


def with_signature_lines(note: str, lines: Sequence[str]) -> str:
    """The note with `lines` (each newline-terminated) appended after its signatures, skipping
    lines it already carries: cosignatures travel as extra signature lines (tlog-witness)."""
    _, existing = split_signed_note(note)
    present = set(existing)
    extra = [line for line in lines if line.removesuffix("\n") not in present]
    for line in extra:
        if not line.startswith(SIGNATURE_LINE_PREFIX) or not line.endswith("\n") \
                or "\n" in line[:-1]:
            raise CosignatureError("a signature line starts with an em dash and ends in a "
                                   "single newline")
    return note + "".join(dict.fromkeys(extra))

