"""C2SP signed notes, checked against the test keys and notes of golang.org/x/mod/sumdb/note."""

from __future__ import annotations

import pytest

from ledger.note import (
    MAX_SIGNATURES,
    NoteError,
    NoteSigner,
    NoteVerifier,
    OpenedNote,
    generate_key_pair,
    open_note,
    sign_note,
)

# Known answers from golang.org/x/mod sumdb/note/note_test.go (TestSign, TestOpen).
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
PETER_SIGNATURE_LINE = (
    "— PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
ENOCH_SIGNATURE_LINE = (
    "— EnochRoot "
    "rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"
)


def test_signing_reproduces_the_reference_note_byte_for_byte() -> None:
    # Ed25519 is deterministic (RFC 8032), so the same key and text give the same signature.
    signer = NoteSigner.from_skey(PETER_SKEY)
    assert sign_note(TEXT, [signer]) == TEXT + "\n" + PETER_SIGNATURE_LINE


def test_keys_parse_and_serialize_back_to_the_reference_text() -> None:
    signer = NoteSigner.from_skey(PETER_SKEY)
    verifier = NoteVerifier.from_vkey(PETER_VKEY)
    assert signer.to_skey() == PETER_SKEY
    assert verifier.to_vkey() == PETER_VKEY
    assert signer.verifier.to_vkey() == PETER_VKEY
    assert verifier.key_id == bytes.fromhex("c74f20a3")


def test_opening_the_reference_note_verifies_known_keys_and_ignores_unknown_ones() -> None:
    note = TEXT + "\n" + PETER_SIGNATURE_LINE + ENOCH_SIGNATURE_LINE
    peter, enoch = NoteVerifier.from_vkey(PETER_VKEY), NoteVerifier.from_vkey(ENOCH_VKEY)
    assert open_note(note, [peter]) == OpenedNote(TEXT, ("PeterNeumann",))
    assert open_note(note, [enoch, peter]) == OpenedNote(TEXT, ("PeterNeumann", "EnochRoot"))
    with pytest.raises(NoteError, match="no valid signature from a known key"):
        open_note(note, [])


def test_a_known_key_with_a_bad_signature_rejects_the_whole_note() -> None:
    broken = PETER_SIGNATURE_LINE[:60] + "ABCD" + PETER_SIGNATURE_LINE[60:]
    with pytest.raises(NoteError, match="invalid signature by known key PeterNeumann"):
        open_note(TEXT + "\n" + ENOCH_SIGNATURE_LINE + broken, [NoteVerifier.from_vkey(PETER_VKEY)])


def test_tampered_text_fails() -> None:
    note = TEXT.replace("problem", "solution", 1) + "\n" + PETER_SIGNATURE_LINE
    with pytest.raises(NoteError, match="invalid signature"):
        open_note(note, [NoteVerifier.from_vkey(PETER_VKEY)])


def test_same_name_with_another_key_is_an_unknown_key() -> None:
    impostor = NoteSigner.generate("PeterNeumann")
    note = sign_note(TEXT, [impostor])
    with pytest.raises(NoteError, match="no valid signature"):
        open_note(note, [NoteVerifier.from_vkey(PETER_VKEY)])


def test_repeated_signatures_by_one_key_count_once() -> None:
    note = TEXT + "\n" + PETER_SIGNATURE_LINE * 3
    assert open_note(note, [NoteVerifier.from_vkey(PETER_VKEY)]).signer_names == ("PeterNeumann",)


@pytest.mark.parametrize(
    ("note", "message"),
    [
        (TEXT, "no blank line"),
        (TEXT + "\n", "signature line"),
        (TEXT + "\n" + PETER_SIGNATURE_LINE[:-1], "newline-terminated"),
        ("\x01" + TEXT + "\n" + PETER_SIGNATURE_LINE, "control character"),
        ("\ud800" + TEXT + "\n" + PETER_SIGNATURE_LINE, "not valid Unicode"),
        (TEXT + "\n" + PETER_SIGNATURE_LINE.replace("PeterNeumann", "Bad Name"), "base64"),
        (TEXT + "\n" + PETER_SIGNATURE_LINE + "Unexpected line.\n", "em dash"),
        (TEXT + "\n" + PETER_SIGNATURE_LINE.replace("—", "-"), "em dash"),
        (TEXT + "\n" + PETER_SIGNATURE_LINE.replace(" x08go", "x08go"), "'— <name> <base64"),
        (TEXT + "\n" + PETER_SIGNATURE_LINE.replace("AM=", "AN="), "canonical base64"),
        (TEXT + "\n" + "— PeterNeumann AAAA\n", "too short"),
        (TEXT + "\n" + "— Peter+Neumann x08go/ZJk\n", "must not contain"),
        (TEXT + "\n" + PETER_SIGNATURE_LINE * (MAX_SIGNATURES + 1), "more than 100"),
    ],
)
def test_malformed_notes_are_rejected(note: str, message: str) -> None:
    with pytest.raises(NoteError, match=message):
        open_note(note, [NoteVerifier.from_vkey(PETER_VKEY)])


def test_text_may_contain_blank_lines_and_round_trips_with_several_signers() -> None:
    text = "first paragraph\n\nsecond paragraph\n\n"
    signers = [NoteSigner.generate("exchange.example/log"), NoteSigner.generate("witness.example")]
    note = sign_note(text, signers)
    opened = open_note(note, [signer.verifier for signer in signers])
    assert opened == OpenedNote(text, ("exchange.example/log", "witness.example"))


@pytest.mark.parametrize(
    ("text", "message"), [("no newline", "end in a newline"), ("a\tb\n", "control")]
)
def test_invalid_text_cannot_be_signed(text: str, message: str) -> None:
    with pytest.raises(NoteError, match=message):
        sign_note(text, [NoteSigner.from_skey(PETER_SKEY)])


def test_signing_needs_a_signer() -> None:
    with pytest.raises(NoteError, match="at least one signer"):
        sign_note(TEXT, [])


@pytest.mark.parametrize(
    "name", ["", "a+b", "a b", "tab\tname", "nbsp\u00a0name", "ideographic\u3000space"]
)
def test_invalid_key_names_are_rejected(name: str) -> None:
    with pytest.raises(NoteError):
        NoteSigner.generate(name)


def test_duplicate_verifiers_are_ambiguous() -> None:
    peter = NoteVerifier.from_vkey(PETER_VKEY)
    with pytest.raises(NoteError, match="share name and key ID"):
        open_note(TEXT + "\n" + PETER_SIGNATURE_LINE, [peter, peter])


def test_generated_key_pairs_round_trip() -> None:
    skey, vkey = generate_key_pair("数据交易所.example/ledger")
    signer, verifier = NoteSigner.from_skey(skey), NoteVerifier.from_vkey(vkey)
    assert signer.to_skey() == skey
    assert signer.verifier.to_vkey() == vkey
    assert open_note(sign_note(TEXT, [signer]), [verifier]).signer_names == (verifier.name,)


def _every_proper_substring(text: str) -> list[str]:
    return [
        text[start:end]
        for start in range(len(text) + 1)
        for end in range(start + 1, len(text) + 1)
        if (start, end) != (0, len(text))
    ]


def _every_single_character_bump(text: str) -> list[str]:
    return [
        text[:position] + chr(ord(text[position]) + 1) + text[position + 1 :]
        for position in range(len(text))
    ]


def test_mangled_verifier_keys_are_rejected() -> None:
    # Mirrors Go's TestNewVerifier: no substring or one-character change of a key may parse.
    for mangled in [
        *_every_proper_substring(PETER_VKEY),
        *_every_single_character_bump(PETER_VKEY),
    ]:
        with pytest.raises(ValueError):  # noqa: PT011 - NoteError or cryptography's ValueError
            NoteVerifier.from_vkey(mangled)


def test_mangled_signer_keys_are_rejected() -> None:
    for mangled in [
        *_every_proper_substring(PETER_SKEY),
        *_every_single_character_bump(PETER_SKEY),
    ]:
        with pytest.raises(ValueError):  # noqa: PT011 - NoteError or cryptography's ValueError
            NoteSigner.from_skey(mangled)


@pytest.mark.parametrize(
    ("vkey", "message"),
    [
        # Go's own rejects: wrong key length and unknown algorithm, each with a matching key ID.
        (
            "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
            "base64|0x01 followed",
        ),
        ("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "0x01 followed"),
        ("PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "lowercase hex"),
    ],
)
def test_verifier_keys_with_wrong_algorithm_or_length_are_rejected(vkey: str, message: str) -> None:
    with pytest.raises(NoteError, match=message):
        NoteVerifier.from_vkey(vkey)
