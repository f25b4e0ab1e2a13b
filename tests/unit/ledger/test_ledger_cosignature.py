"""Cosignatures (c2sp.org/tlog-cosignature, Ed25519 cosignature/v1) as extra note signatures."""

from __future__ import annotations

import base64
import hashlib

import pytest

from ledger.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from ledger.cosignature import (
    COSIGNATURE_KEY_TYPE,
    CosignatureError,
    CosignatureVerifier,
    Cosigner,
    cosigned_message,
    parse_cosignature_line,
    verified_cosignatures,
    with_signature_lines,
)
from ledger.note import NoteSigner, NoteVerifier, open_note

ORIGIN = "example.com/behind-the-sofa"


def signed_checkpoint() -> tuple[NoteSigner, str]:
    log = NoteSigner.generate(ORIGIN)
    return log, sign_checkpoint(Checkpoint(ORIGIN, 20852163, bytes(range(32))), log)


def test_the_signed_message_is_the_header_the_time_and_the_note_text():
    text = Checkpoint(ORIGIN, 20852163, bytes(32)).to_text()
    assert cosigned_message(text, 1679315147) == (
        b"cosignature/v1\ntime 1679315147\n" + text.encode())


def test_the_key_id_takes_signature_type_0x04():
    witness = Cosigner.generate("witness.example.com/w1")
    key = witness.verifier.public_key_bytes
    expected = hashlib.sha256(b"witness.example.com/w1\n\x04" + key).digest()[:4]
    assert witness.verifier.key_id == expected
    vkey = witness.verifier.to_vkey()
    name, key_id, typed = vkey.split("+", 2)
    assert (name, key_id) == ("witness.example.com/w1", expected.hex())
    assert base64.b64decode(typed)[0] == COSIGNATURE_KEY_TYPE
    assert CosignatureVerifier.from_vkey(vkey).to_vkey() == vkey
    assert Cosigner.from_skey(witness.to_skey()).verifier.to_vkey() == vkey


def test_a_cosignature_line_holds_key_id_timestamp_and_signature():
    _, note = signed_checkpoint()
    witness = Cosigner.generate("witness.example.com/w1")
    text = note[: note.rindex("\n\n") + 1]
    cosignature = witness.cosign(text, 1679315147)
    payload = base64.b64decode(cosignature.line.split(" ")[2])
    assert payload[:4] == witness.verifier.key_id
    assert int.from_bytes(payload[4:12], "big") == 1679315147
    assert len(payload) == 4 + 8 + 64
    assert parse_cosignature_line(cosignature.line) == cosignature


def test_cosignatures_verify_and_the_log_signature_still_opens():
    log, note = signed_checkpoint()
    witnesses = [Cosigner.generate(f"witness.example.com/w{n}") for n in (1, 2)]
    text = note[: note.rindex("\n\n") + 1]
    cosigned = with_signature_lines(note, [w.cosign(text, 1700000000 + n).line
                                           for n, w in enumerate(witnesses)])
    _, found = verified_cosignatures(cosigned, [w.verifier for w in witnesses])
    assert [c.name for c in found] == [w.name for w in witnesses]
    # signed-note: signature lines by unknown keys are ignored, so existing verifiers of the
    # log's checkpoint read the cosigned note as before.
    assert open_checkpoint(cosigned, log.verifier).tree_size == 20852163
    assert open_note(cosigned, [log.verifier]).signer_names == (ORIGIN,)
    # A cosigner that did not sign is simply absent; the log's own line is not a cosignature.
    stranger = Cosigner.generate("witness.example.com/w3")
    assert verified_cosignatures(cosigned, [stranger.verifier])[1] == []


def test_a_forged_cosignature_rejects_the_note():
    _, note = signed_checkpoint()
    witness = Cosigner.generate("witness.example.com/w1")
    text = note[: note.rindex("\n\n") + 1]
    good = witness.cosign(text, 1700000000)
    forged = type(good)(good.name, good.key_id, good.timestamp + 1, good.signature)
    with pytest.raises(CosignatureError, match="invalid cosignature"):
        verified_cosignatures(with_signature_lines(note, [forged.line]), [witness.verifier])
    # The same key signing a different checkpoint does not cosign this one.
    other = witness.cosign(Checkpoint(ORIGIN, 1, bytes(32)).to_text(), 1700000000)
    with pytest.raises(CosignatureError, match="invalid cosignature"):
        verified_cosignatures(with_signature_lines(note, [other.line]), [witness.verifier])


def test_a_log_key_is_not_a_cosigner_key():
    log = NoteSigner.generate("witness.example.com/w1")
    with pytest.raises(CosignatureError, match="0x04"):
        CosignatureVerifier.from_vkey(log.verifier.to_vkey())
    with pytest.raises(CosignatureError, match="0x04"):
        Cosigner.from_skey(log.to_skey())
    witness = Cosigner.generate("witness.example.com/w1")
    with pytest.raises(ValueError, match="0x01"):
        NoteVerifier.from_vkey(witness.verifier.to_vkey())


def test_a_signature_by_the_same_key_as_a_log_signature_is_no_cosignature():
    """A plain note signature (type 0x01 key ID) never passes for a cosignature, even by a
    key with the cosigner's name: the key IDs differ with the type byte."""
    _, note = signed_checkpoint()
    witness = Cosigner.generate("witness.example.com/w1")
    impostor = NoteSigner("witness.example.com/w1", witness.private_key)
    text = note[: note.rindex("\n\n") + 1]
    plain = base64.b64encode(impostor.key_id + impostor.sign(text.encode())).decode()
    line = f"\u2014 witness.example.com/w1 {plain}\n"
    assert verified_cosignatures(with_signature_lines(note, [line]), [witness.verifier])[1] == []


def test_a_malformed_cosignature_line_is_refused():
    witness = Cosigner.generate("witness.example.com/w1")
    short = base64.b64encode(witness.verifier.key_id + bytes(40)).decode()
    with pytest.raises(CosignatureError, match="8-byte timestamp"):
        parse_cosignature_line(f"\u2014 witness.example.com/w1 {short}\n")
    with pytest.raises(CosignatureError, match="2\\^63"):
        witness.cosign(Checkpoint(ORIGIN, 1, bytes(32)).to_text(), 2**63)
    _, note = signed_checkpoint()
    with pytest.raises(CosignatureError, match="em dash"):
        with_signature_lines(note, ["witness.example.com/w1 AAAA\n"])


def test_adding_the_same_lines_twice_changes_nothing():
    _, note = signed_checkpoint()
    witness = Cosigner.generate("witness.example.com/w1")
    line = witness.cosign(note[: note.rindex("\n\n") + 1], 1700000000).line
    once = with_signature_lines(note, [line])
    assert with_signature_lines(once, [line, line]) == once
