"""Signed exchange profiles: round trip, and every kind of forgery refused with a reason."""

from __future__ import annotations

import dataclasses

import pytest

from ledger.note import NoteSigner, sign_note
from ledger.profile import ExchangeProfile, ProfileError, open_profile, sign_profile

ORIGIN = "a.exchange.test/ledger"
ADDRESS = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


@pytest.fixture(scope="module")
def signer() -> NoteSigner:
    return NoteSigner.generate(ORIGIN)


def profile_for(signer: NoteSigner, **overrides: str | None) -> ExchangeProfile:
    fields: dict[str, str | None] = {
        "name": "示范 公共数据交易所", "origin": signer.name, "vkey": signer.verifier.to_vkey(),
        "api_base_url": "https://a.exchange.test/api", "chain_address": ADDRESS,
        "ledger_contract": None, "code_issuer": "DEMOEX"}
    fields.update(overrides)
    return ExchangeProfile(**fields)  # type: ignore[arg-type]


def test_round_trip(signer: NoteSigner) -> None:
    profile = profile_for(signer)
    note = sign_profile(profile, signer)
    assert note.startswith("exchange-profile/v1\nname 示范 公共数据交易所\norigin a.exchange")
    assert "ledger-contract" not in note
    assert open_profile(note) == profile
    assert open_profile(note, expected_vkey=signer.verifier.to_vkey() + "\n",
                        expected_origin=ORIGIN) == profile


def test_altered_line_breaks_the_signature(signer: NoteSigner) -> None:
    note = sign_profile(profile_for(signer), signer)
    altered = note.replace("https://a.exchange.test/api", "https://evil.test/api")
    with pytest.raises(ProfileError, match="profile signature: invalid signature by known key"):
        open_profile(altered)


def test_profile_resigned_by_another_key_is_refused(signer: NoteSigner) -> None:
    impostor = NoteSigner.generate(ORIGIN)
    # The impostor claims the real key but can only sign with its own.
    forged = sign_note(profile_for(signer).to_text(), [impostor])
    with pytest.raises(ProfileError, match="no valid signature from a known key"):
        open_profile(forged)


def test_self_consistent_profile_with_other_key_fails_the_pin(signer: NoteSigner) -> None:
    impostor = NoteSigner.generate(ORIGIN)
    note = sign_profile(profile_for(impostor), impostor)
    assert open_profile(note).vkey == impostor.verifier.to_vkey()
    with pytest.raises(ProfileError, match="not the pinned key"):
        open_profile(note, expected_vkey=signer.verifier.to_vkey())
    with pytest.raises(ProfileError, match=r"is not 'b\.test/ledger'"):
        open_profile(note, expected_origin="b.test/ledger")


def test_sign_refuses_a_key_the_profile_does_not_name(signer: NoteSigner) -> None:
    with pytest.raises(ProfileError, match="signed by the ledger key it names"):
        sign_profile(profile_for(signer), NoteSigner.generate(ORIGIN))


@pytest.mark.parametrize(("overrides", "reason"), [
    ({"origin": "other.test/ledger"}, "not the origin"),
    ({"chain_address": "0x1234"}, "not a 0x-hex 20-byte address"),
    ({"api_base_url": "ftp://x"}, "not an http"),
    ({"name": " padded"}, "single-line"),
    ({"vkey": "garbage"}, "profile vkey"),
])
def test_invalid_fields_are_refused(signer: NoteSigner, overrides: dict[str, str],
                                    reason: str) -> None:
    with pytest.raises(ProfileError, match=reason):
        profile_for(signer, **overrides)


@pytest.mark.parametrize(("text", "reason"), [
    ("exchange-profile/v2\nname x\n", "must start with"),
    ("exchange-profile/v1\nname x\n", "lacks origin, vkey, api"),
    ("exchange-profile/v1\norigin o\nname x\n", "out of order"),
    ("exchange-profile/v1\nname x\nname y\n", "repeated"),
    ("exchange-profile/v1\nwho x\n", "not '<known key> <value>'"),
    ("exchange-profile/v1\nname x", "end in a newline"),
])
def test_malformed_text_is_refused(text: str, reason: str) -> None:
    with pytest.raises(ProfileError, match=reason):
        ExchangeProfile.parse(text)


def test_unsigned_note_is_refused(signer: NoteSigner) -> None:
    with pytest.raises(ProfileError, match="no signature block"):
        open_profile(profile_for(signer).to_text())


def test_profile_is_frozen(signer: NoteSigner) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        profile_for(signer).name = "x"  # type: ignore[misc]
