"""C2SP tlog-checkpoint text and signed checkpoints."""

from __future__ import annotations

import base64

import pytest

from ledger.checkpoint import (
    MAX_TREE_SIZE,
    Checkpoint,
    CheckpointError,
    open_checkpoint,
    sign_checkpoint,
)
from ledger.hashing import EMPTY_ROOT
from ledger.note import NoteSigner, open_note, sign_note

# The example body from c2sp.org/tlog-checkpoint.
SPEC_EXAMPLE_TEXT = (
    "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
)
ORIGIN = "exchange.example/ledger"


def test_the_spec_example_parses_and_formats_back() -> None:
    checkpoint = Checkpoint.parse(SPEC_EXAMPLE_TEXT)
    assert checkpoint.origin == "example.com/behind-the-sofa"
    assert checkpoint.tree_size == 20852163
    assert checkpoint.root_hash == base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
    assert checkpoint.extensions == ()
    assert checkpoint.to_text() == SPEC_EXAMPLE_TEXT


def test_extensions_and_the_empty_tree_round_trip() -> None:
    checkpoint = Checkpoint(ORIGIN, 0, EMPTY_ROOT, ["anchor 0xabc", "second line"])
    text = checkpoint.to_text()
    assert text == (
        f"{ORIGIN}\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\nanchor 0xabc\nsecond line\n"
    )
    parsed = Checkpoint.parse(text)
    assert parsed == checkpoint
    assert parsed.extensions == ("anchor 0xabc", "second line")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (SPEC_EXAMPLE_TEXT[:-1], "end in a newline"),
        ("origin\n5\n", "needs origin"),
        ("\n5\n" + SPEC_EXAMPLE_TEXT.split("\n")[2] + "\n", "origin"),
        (SPEC_EXAMPLE_TEXT.replace("20852163", "020852163"), "leading zeroes"),
        (SPEC_EXAMPLE_TEXT.replace("20852163", "+20852163"), "leading zeroes"),
        (SPEC_EXAMPLE_TEXT.replace("20852163", "2_0852163"), "leading zeroes"),
        (SPEC_EXAMPLE_TEXT.replace("20852163", "٢"), "leading zeroes"),
        (SPEC_EXAMPLE_TEXT.replace("20852163", str(MAX_TREE_SIZE + 1)), "outside"),
        (SPEC_EXAMPLE_TEXT.replace("q2I=", "q2I"), "base64"),
        (SPEC_EXAMPLE_TEXT.replace("q2I=", "q2J="), "canonical base64"),
        (
            SPEC_EXAMPLE_TEXT.replace("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=", "AAAA"),
            "32 bytes",
        ),
        (SPEC_EXAMPLE_TEXT + "\n", "extension line 0"),
        (SPEC_EXAMPLE_TEXT + "ext\n\n", "extension line 1"),
        (SPEC_EXAMPLE_TEXT.replace("sofa", "so\rfa"), "control"),
    ],
)
def test_malformed_checkpoint_text_is_rejected(text: str, message: str) -> None:
    with pytest.raises(CheckpointError, match=message):
        Checkpoint.parse(text)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("", 1, EMPTY_ROOT), "origin"),
        (("a\nb", 1, EMPTY_ROOT), "newlines"),
        ((ORIGIN, -1, EMPTY_ROOT), "outside"),
        ((ORIGIN, True, EMPTY_ROOT), "integer"),
        ((ORIGIN, 1, b"short"), "32 bytes"),
        ((ORIGIN, 1, EMPTY_ROOT, "one string"), "not one string"),
        ((ORIGIN, 1, EMPTY_ROOT, [""]), "extension line 0"),
    ],
)
def test_invalid_checkpoints_cannot_be_built(arguments: tuple[object, ...], message: str) -> None:
    with pytest.raises(CheckpointError, match=message):
        Checkpoint(*arguments)  # type: ignore[arg-type]


def test_signed_checkpoint_opens_to_the_same_checkpoint() -> None:
    signer = NoteSigner.generate(ORIGIN)
    checkpoint = Checkpoint(ORIGIN, 1234, EMPTY_ROOT)
    note = sign_checkpoint(checkpoint, signer)
    assert note.startswith(checkpoint.to_text() + "\n— " + ORIGIN + " ")
    assert open_checkpoint(note, signer.verifier) == checkpoint
    assert open_note(note, [signer.verifier]).text == checkpoint.to_text()


def test_tampered_or_foreign_checkpoints_are_rejected() -> None:
    signer = NoteSigner.generate(ORIGIN)
    note = sign_checkpoint(Checkpoint(ORIGIN, 1234, EMPTY_ROOT), signer)
    with pytest.raises(CheckpointError, match="invalid signature"):
        open_checkpoint(note.replace("\n1234\n", "\n1235\n"), signer.verifier)
    with pytest.raises(CheckpointError, match="no valid signature"):
        open_checkpoint(note, NoteSigner.generate(ORIGIN).verifier)


def test_origin_must_match_the_key_name_or_the_expected_origin() -> None:
    peer_log = NoteSigner.generate("peer.example/log")
    note = sign_checkpoint(Checkpoint("other.example/log", 3, EMPTY_ROOT), peer_log)
    with pytest.raises(CheckpointError, match=r"is not 'peer\.example/log'"):
        open_checkpoint(note, peer_log.verifier)
    opened = open_checkpoint(note, peer_log.verifier, expected_origin="other.example/log")
    assert opened.origin == "other.example/log"


def test_a_signed_note_that_is_not_a_checkpoint_is_rejected() -> None:
    signer = NoteSigner.generate(ORIGIN)
    with pytest.raises(CheckpointError, match="needs origin"):
        open_checkpoint(sign_note(f"{ORIGIN}\n", [signer]), signer.verifier)
