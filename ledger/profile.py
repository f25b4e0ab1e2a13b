"""The exchange profile: who an exchange is in the consortium, as a C2SP signed note.

A peer needs four facts to check this exchange's records (MISSION §8, 互认互通): its name, its
log's origin and verifier key (to check checkpoints), its chain address (to find its anchors
and codes on the ExchangeLedger contract) and where its API is. The profile states them in a
signed note (c2sp.org/signed-note) signed with the ledger key itself, so the profile cannot
name a key its holder does not control, and a copy passed on by anyone stays checkable.

Note text, one `<key> <value>` line each, in this order (optional lines may be absent):

    exchange-profile/v1
    name <exchange name>
    origin <log origin, = the key name>
    vkey <signed-note verifier key>
    witness <cosigner verifier key, type 0x04>  (optional: the exchange witnesses its peers)
    chain-address <0x… checksum address>        (optional: anchoring configured)
    ledger-contract <0x… checksum address>      (optional: anchoring configured)
    code-issuer <issuer part of unified codes>  (optional)
    api <API base URL>
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ledger.cosignature import CosignatureError, CosignatureVerifier
from ledger.note import NoteError, NoteSigner, NoteVerifier, open_note, sign_note

PROFILE_HEADER = "exchange-profile/v1"
_REQUIRED = ("name", "origin", "vkey", "api")
_ORDER = ("name", "origin", "vkey", "witness", "chain-address", "ledger-contract", "code-issuer",
          "api")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_URL = re.compile(r"https?://[^\s]+")


class ProfileError(ValueError):
    """A profile is malformed, forged, altered or not the one expected; the message says why."""


@dataclass(frozen=True)
class ExchangeProfile:
    name: str
    origin: str
    vkey: str
    api_base_url: str
    chain_address: str | None = None
    ledger_contract: str | None = None
    code_issuer: str | None = None
    # The witness's cosigning key (c2sp.org/tlog-cosignature); a line added after the first
    # profiles, optional so that those stay verifiable.
    witness_vkey: str | None = None

    def __post_init__(self) -> None:
        for key, value in self._lines():
            if not value or value != value.strip() or any(ch < " " for ch in value):
                raise ProfileError(f"profile {key} must be non-empty single-line text "
                                   "without surrounding spaces")
        try:
            verifier = NoteVerifier.from_vkey(self.vkey)
        except (NoteError, ValueError) as error:
            raise ProfileError(f"profile vkey: {error}") from error
        # tlog-checkpoint: a log's key name is its origin; a profile pairing a log's origin with
        # some other key would let a checkpoint signed by that key pass for the log's.
        if verifier.name != self.origin:
            raise ProfileError(f"profile vkey is named {verifier.name!r}, not the origin "
                               f"{self.origin!r}")
        self._check_witness(verifier)
        for key, address in (("chain-address", self.chain_address),
                             ("ledger-contract", self.ledger_contract)):
            if address is not None and not _ADDRESS.fullmatch(address):
                raise ProfileError(f"profile {key} {address!r} is not a 0x-hex 20-byte address")
        if not _URL.fullmatch(self.api_base_url):
            raise ProfileError(f"profile api {self.api_base_url!r} is not an http(s) URL")

    def _check_witness(self, log_verifier: NoteVerifier) -> None:
        if self.witness_vkey is None:
            return
        try:
            witness = CosignatureVerifier.from_vkey(self.witness_vkey)
        except (CosignatureError, ValueError) as error:
            raise ProfileError(f"profile witness: {error}") from error
        if witness.public_key_bytes == log_verifier.public_key_bytes:
            raise ProfileError("profile witness key must differ from the log's key")

    @property
    def verifier(self) -> NoteVerifier:
        return NoteVerifier.from_vkey(self.vkey)

    @property
    def witness(self) -> CosignatureVerifier | None:
        return None if self.witness_vkey is None else CosignatureVerifier.from_vkey(
            self.witness_vkey)

    def _lines(self) -> list[tuple[str, str]]:
        values = {"name": self.name, "origin": self.origin, "vkey": self.vkey,
                  "witness": self.witness_vkey,
                  "chain-address": self.chain_address, "ledger-contract": self.ledger_contract,
                  "code-issuer": self.code_issuer, "api": self.api_base_url}
        return [(key, value) for key in _ORDER if (value := values[key]) is not None]

    def to_text(self) -> str:
        return PROFILE_HEADER + "\n" + "".join(f"{key} {value}\n" for key, value in self._lines())

    @classmethod
    def parse(cls, text: str) -> ExchangeProfile:
        """Parse profile note text, accepting only what `to_text` would produce."""
        if not text.endswith("\n"):
            raise ProfileError("profile text must end in a newline")
        header, *lines = text[:-1].split("\n")
        if header != PROFILE_HEADER:
            raise ProfileError(f"profile must start with {PROFILE_HEADER!r}, not {header[:40]!r}")
        values: dict[str, str] = {}
        position = 0
        for line in lines:
            key, separator, value = line.partition(" ")
            if not separator or key not in _ORDER:
                raise ProfileError(f"profile line {line[:40]!r} is not '<known key> <value>'")
            index = _ORDER.index(key)
            if index < position or key in values:
                raise ProfileError(f"profile line {key!r} is repeated or out of order")
            position = index
            values[key] = value
        missing = [key for key in _REQUIRED if key not in values]
        if missing:
            raise ProfileError(f"profile lacks {', '.join(missing)}")
        return cls(name=values["name"], origin=values["origin"], vkey=values["vkey"],
                   api_base_url=values["api"], chain_address=values.get("chain-address"),
                   ledger_contract=values.get("ledger-contract"),
                   code_issuer=values.get("code-issuer"),
                   witness_vkey=values.get("witness"))


def sign_profile(profile: ExchangeProfile, signer: NoteSigner) -> str:
    """The profile as a signed note; `signer` must be the key the profile names."""
    if signer.verifier.to_vkey() != profile.vkey:
        raise ProfileError("a profile must be signed by the ledger key it names")
    return sign_note(profile.to_text(), [signer])


def open_profile(note: str, *, expected_vkey: str | None = None,
                 expected_origin: str | None = None) -> ExchangeProfile:
    """Verify a signed profile and parse it, or raise `ProfileError` saying why.

    The signature must be by the key the profile itself names. That proves the holder of that
    key made this profile, not that the key is the peer's: pass what was learnt out of band —
    the vkey configured for the peer, or the origin the consortium admitted on chain — to pin
    it. An altered line breaks the signature; a profile re-signed with another key lacks a
    signature by the key it names.
    """
    split_at = note.rfind("\n\n")
    if split_at < 0:
        raise ProfileError("profile note has no signature block")
    claimed = ExchangeProfile.parse(note[: split_at + 1])
    try:
        opened = open_note(note, [claimed.verifier])
    except NoteError as error:
        raise ProfileError(f"profile signature: {error}") from error
    if opened.text != claimed.to_text():  # pragma: no cover — open_note splits the same way
        raise ProfileError("profile text changed while verifying")
    if expected_vkey is not None and claimed.vkey != expected_vkey.strip():
        raise ProfileError(f"profile names key {claimed.vkey!r}, not the pinned key "
                           f"{expected_vkey.strip()!r}")
    if expected_origin is not None and claimed.origin != expected_origin:
        raise ProfileError(f"profile origin {claimed.origin!r} is not {expected_origin!r}")
    return claimed
