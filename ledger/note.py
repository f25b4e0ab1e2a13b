"""C2SP signed notes (c2sp.org/signed-note) with Ed25519 signatures.

The key text forms are those of Go's golang.org/x/mod/sumdb/note, which the checkpoint
tooling of the transparency ecosystem reads:

    verifier key  <name>+<key ID, 8 hex digits>+<base64(0x01 ‖ 32-byte public key)>
    signer key    PRIVATE+KEY+<name>+<key ID, 8 hex digits>+<base64(0x01 ‖ 32-byte seed)>
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

# signed-note "Signature types": 0x01 is Ed25519.
ED25519_SIGNATURE_TYPE = 0x01
ED25519_KEY_BYTES = 32
ED25519_SIGNATURE_BYTES = 64
KEY_ID_BYTES = 4
SIGNATURE_LINE_PREFIX = "\u2014 "  # em dash, space
# signed-note asks verifiers to cap signatures but accept at least 16; Go's note package
# allows 100, and so do we.
MAX_SIGNATURES = 100
_PRIVATE_KEY_PREFIX = "PRIVATE+KEY+"
_HEX_DIGITS = frozenset("0123456789abcdef")


class NoteError(ValueError):
    """A note, key or signature is malformed, or a note carries no verifiable signature."""


def decode_base64_strict(text: str, what: str) -> bytes:
    """Standard base64 (RFC 4648 §4), accepting only the one canonical encoding of each value."""
    try:
        decoded = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as error:
        raise NoteError(f"{what} is not valid base64") from error
    if base64.b64encode(decoded).decode("ascii") != text:
        raise NoteError(f"{what} is not canonical base64")
    return decoded


def validate_key_name(name: str) -> str:
    """signed-note "Format": key names are non-empty, without Unicode spaces or '+'."""
    if not isinstance(name, str) or not name:
        raise NoteError("key name must be a non-empty string")
    if "+" in name or any(character.isspace() for character in name):
        raise NoteError(f"key name {name!r} must not contain '+' or whitespace")
    _require_note_characters(name, "key name")
    return name


def _require_note_characters(text: str, what: str) -> None:
    """signed-note "Format": valid UTF-8 with no ASCII control character but newline."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise NoteError(f"{what} is not valid Unicode") from error
    for character in text:
        if character < " " and character != "\n":
            raise NoteError(f"{what} contains control character U+{ord(character):04X}")


def typed_key_id(name: str, key_type: int, public_key: bytes) -> bytes:
    """key ID = SHA-256(key name ‖ 0x0A ‖ key type ‖ public key)[:4] (signed-note)."""
    material = name.encode("utf-8") + b"\n" + bytes([key_type]) + public_key
    return hashlib.sha256(material).digest()[:KEY_ID_BYTES]


def ed25519_key_id(name: str, public_key: bytes) -> bytes:
    """key ID = SHA-256(key name ‖ 0x0A ‖ 0x01 ‖ 32-byte public key)[:4] (signed-note)."""
    return typed_key_id(name, ED25519_SIGNATURE_TYPE, public_key)


def _parse_key_id(text: str, what: str) -> bytes:
    if len(text) != 2 * KEY_ID_BYTES or not set(text) <= _HEX_DIGITS:
        raise NoteError(f"{what} key ID must be {2 * KEY_ID_BYTES} lowercase hex digits")
    return bytes.fromhex(text)


def _parse_typed_key(text: str, what: str, key_type: int = ED25519_SIGNATURE_TYPE) -> bytes:
    typed_key = decode_base64_strict(text, f"{what} key")
    if len(typed_key) != 1 + ED25519_KEY_BYTES or typed_key[0] != key_type:
        raise NoteError(f"{what} key must be 0x{key_type:02x} followed by a 32-byte Ed25519 key")
    return typed_key[1:]


def split_typed_key(text: str, key_type: int, what: str) -> tuple[str, bytes, bytes]:
    """`<name>+<key ID>+<base64(key type ‖ 32-byte key)>` as (name, stated key ID, key bytes);
    the caller checks the key ID against the key, whose meaning depends on its type."""
    # Names and key IDs hold no '+', but the base64 key may: split at the first two only.
    parts = text.split("+", 2)
    if len(parts) != 3:
        raise NoteError(f"{what} key must be <name>+<key ID>+<base64 key>")
    name, key_id_text, key_text = parts
    validate_key_name(name)
    return name, _parse_key_id(key_id_text, what), _parse_typed_key(key_text, what, key_type)


def verifier_key_text(name: str, key_id: bytes, key_type: int, public_key: bytes) -> str:
    typed_key = bytes([key_type]) + public_key
    return f"{name}+{key_id.hex()}+{base64.b64encode(typed_key).decode('ascii')}"


def _raw_public_key(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


@dataclass(frozen=True)
class NoteVerifier:
    """A named Ed25519 public key that checks note signatures."""

    name: str
    public_key: Ed25519PublicKey = field(repr=False)
    key_id: bytes = field(init=False)

    def __post_init__(self) -> None:
        validate_key_name(self.name)
        object.__setattr__(self, "key_id", ed25519_key_id(self.name, self.public_key_bytes))

    @property
    def public_key_bytes(self) -> bytes:
        return _raw_public_key(self.public_key)

    def verify(self, text: bytes, signature: bytes) -> bool:
        try:
            self.public_key.verify(signature, text)
        except InvalidSignature:
            return False
        return True

    def to_vkey(self) -> str:
        return verifier_key_text(self.name, self.key_id, ED25519_SIGNATURE_TYPE,
                                 self.public_key_bytes)

    @classmethod
    def from_vkey(cls, vkey: str) -> NoteVerifier:
        name, key_id, key = split_typed_key(vkey, ED25519_SIGNATURE_TYPE, "verifier")
        verifier = cls(name, Ed25519PublicKey.from_public_bytes(key))
        if verifier.key_id != key_id:
            raise NoteError(f"verifier key ID {key_id.hex()} does not match the name and key")
        return verifier


@dataclass(frozen=True)
class NoteSigner:
    """A named Ed25519 private key that signs notes."""

    name: str
    private_key: Ed25519PrivateKey = field(repr=False)

    def __post_init__(self) -> None:
        validate_key_name(self.name)

    @classmethod
    def generate(cls, name: str) -> NoteSigner:
        return cls(name, Ed25519PrivateKey.generate())

    @property
    def verifier(self) -> NoteVerifier:
        return NoteVerifier(self.name, self.private_key.public_key())

    @property
    def key_id(self) -> bytes:
        return self.verifier.key_id

    def sign(self, text: bytes) -> bytes:
        return self.private_key.sign(text)

    def to_skey(self) -> str:
        seed = self.private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        return private_key_text(self.name, self.key_id, ED25519_SIGNATURE_TYPE, seed)

    @classmethod
    def from_skey(cls, skey: str) -> NoteSigner:
        name, key_id, seed = split_private_key(skey, ED25519_SIGNATURE_TYPE)
        signer = cls(name, Ed25519PrivateKey.from_private_bytes(seed))
        if signer.key_id != key_id:
            raise NoteError(f"signer key ID {key_id.hex()} does not match the name and key")
        return signer


def split_private_key(skey: str, key_type: int) -> tuple[str, bytes, bytes]:
    """`PRIVATE+KEY+<name>+<key ID>+<base64(key type ‖ 32-byte seed)>` as (name, key ID, seed)."""
    if not skey.startswith(_PRIVATE_KEY_PREFIX):
        raise NoteError("signer key must start with PRIVATE+KEY+")
    return split_typed_key(skey.removeprefix(_PRIVATE_KEY_PREFIX), key_type, "signer")


def private_key_text(name: str, key_id: bytes, key_type: int, seed: bytes) -> str:
    typed_seed = bytes([key_type]) + seed
    return (f"{_PRIVATE_KEY_PREFIX}{name}+{key_id.hex()}+"
            f"{base64.b64encode(typed_seed).decode('ascii')}")


def generate_key_pair(name: str) -> tuple[str, str]:
    """A fresh Ed25519 key pair as (signer key, verifier key) text."""
    signer = NoteSigner.generate(name)
    return signer.to_skey(), signer.verifier.to_vkey()


class OpenedNote(NamedTuple):
    """A note's text and the names of the known keys whose signatures verified."""

    text: str
    signer_names: tuple[str, ...]


def _validate_note_text(text: str) -> None:
    if not isinstance(text, str) or not text.endswith("\n"):
        raise NoteError("note text must end in a newline")
    _require_note_characters(text, "note text")


def sign_note(text: str, signers: Sequence[NoteSigner]) -> str:
    """The signed note: text, a blank line, then one signature line per signer."""
    _validate_note_text(text)
    if not signers:
        raise NoteError("a note needs at least one signer")
    message = text.encode("utf-8")
    lines = []
    for signer in signers:
        signature = base64.b64encode(signer.key_id + signer.sign(message)).decode("ascii")
        lines.append(f"{SIGNATURE_LINE_PREFIX}{signer.name} {signature}\n")
    return text + "\n" + "".join(lines)


def open_note(note: str, verifiers: Sequence[NoteVerifier]) -> OpenedNote:
    """Verify a signed note against known keys; raise `NoteError` unless at least one verifies.

    Per signed-note "Signatures": signatures from unknown keys (name and key ID not both known)
    are ignored; a known key's signature that fails makes the whole note invalid.
    """
    known: dict[tuple[str, bytes], NoteVerifier] = {}
    for verifier in verifiers:
        if (verifier.name, verifier.key_id) in known:
            raise NoteError(
                f"two verifiers share name and key ID {verifier.name}+{verifier.key_id.hex()}"
            )
        known[verifier.name, verifier.key_id] = verifier
    text, signature_lines = split_signed_note(note)
    message = text.encode("utf-8")
    signer_names: list[str] = []
    verified_keys: set[tuple[str, bytes]] = set()
    for line in signature_lines:
        name, key_id, signature = parse_signature_line(line)
        known_verifier = known.get((name, key_id))
        if known_verifier is None or (name, key_id) in verified_keys:
            continue
        if not known_verifier.verify(message, signature):
            raise NoteError(f"invalid signature by known key {name}+{key_id.hex()}")
        verified_keys.add((name, key_id))
        signer_names.append(name)
    if not signer_names:
        raise NoteError("note has no valid signature from a known key")
    return OpenedNote(text, tuple(signer_names))


def split_signed_note(note: str) -> tuple[str, list[str]]:
    """A signed note's text (with its final newline) and its signature lines (without theirs)."""
    _require_note_characters(note, "note")
    # The text ends at the last blank line; signature lines never contain one.
    split_at = note.rfind("\n\n")
    if split_at < 0:
        raise NoteError("note has no blank line before its signatures")
    text, signature_block = note[: split_at + 1], note[split_at + 2 :]
    if not signature_block.endswith("\n"):
        raise NoteError("note must end with a newline-terminated signature line")
    signature_lines = signature_block[:-1].split("\n")
    if len(signature_lines) > MAX_SIGNATURES:
        raise NoteError(f"note has more than {MAX_SIGNATURES} signatures")
    return text, signature_lines


def parse_signature_line(line: str) -> tuple[str, bytes, bytes]:
    """`— <name> <base64(key ID ‖ signature)>` as (name, key ID, signature bytes)."""
    if not line.startswith(SIGNATURE_LINE_PREFIX):
        raise NoteError(f"signature line must start with an em dash and a space: {line[:40]!r}")
    name, separator, encoded = line.removeprefix(SIGNATURE_LINE_PREFIX).partition(" ")
    if not separator:
        raise NoteError("signature line must be '— <name> <base64 signature>'")
    validate_key_name(name)
    decoded = decode_base64_strict(encoded, f"signature by {name}")
    if len(decoded) <= KEY_ID_BYTES:
        raise NoteError(f"signature by {name} is too short to hold a key ID and a signature")
    return name, decoded[:KEY_ID_BYTES], decoded[KEY_ID_BYTES:]
