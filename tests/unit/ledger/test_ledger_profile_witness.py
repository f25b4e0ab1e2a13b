"""The witness key line of the exchange profile: optional, of its own type, and its own key."""

from __future__ import annotations

import pytest

from ledger.cosignature import Cosigner
from ledger.note import NoteSigner, sign_note
from ledger.profile import ExchangeProfile, ProfileError, open_profile, sign_profile

ORIGIN = "a.exchange.test/ledger"
LOG = NoteSigner.generate(ORIGIN)


def profile(witness_vkey: str | None) -> ExchangeProfile:
    return ExchangeProfile(name="A", origin=ORIGIN, vkey=LOG.verifier.to_vkey(),
                           api_base_url="https://a.exchange.test", witness_vkey=witness_vkey)


def test_the_witness_key_rides_in_the_signed_profile():
    witness = Cosigner.generate("a.exchange.test/witness")
    note = sign_profile(profile(witness.verifier.to_vkey()), LOG)
    assert f"\nvkey {LOG.verifier.to_vkey()}\nwitness {witness.verifier.to_vkey()}\n" in note
    opened = open_profile(note)
    assert opened.witness is not None
    assert opened.witness.to_vkey() == witness.verifier.to_vkey()


def test_a_profile_signed_before_the_witness_line_existed_still_verifies():
    # The exact text of a profile made before the witness line existed.
    text = (f"exchange-profile/v1\nname A\norigin {ORIGIN}\nvkey {LOG.verifier.to_vkey()}\n"
            "api https://a.exchange.test\n")
    opened = open_profile(sign_note(text, [LOG]))
    assert opened.witness is None
    assert opened.to_text() == text


def test_the_witness_line_is_refused_with_a_log_key_or_the_log_s_own_key():
    with pytest.raises(ProfileError, match="0x04"):
        profile(NoteSigner.generate("a.exchange.test/witness").verifier.to_vkey())
    same_key = Cosigner(ORIGIN, LOG.private_key)
    with pytest.raises(ProfileError, match="differ from the log"):
        profile(same_key.verifier.to_vkey())


def test_an_altered_witness_line_breaks_the_signature():
    witness, other = Cosigner.generate("w/1"), Cosigner.generate("w/1")
    note = sign_profile(profile(witness.verifier.to_vkey()), LOG)
    forged = note.replace(witness.verifier.to_vkey(), other.verifier.to_vkey())
    with pytest.raises(ProfileError, match="signature"):
        open_profile(forged)
