"""C2SP transparency log checkpoints (c2sp.org/tlog-checkpoint): a signed note whose text is

<origin>
<tree size, decimal>
<base64 root hash>
[extension lines]
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass

from ledger.hashing import HASH_SIZE_BYTES
from ledger.note import (
    NoteError,
    NoteSigner,
    NoteVerifier,
    decode_base64_strict,
    open_note,
    sign_note,
)

# tlog-checkpoint "Note text" item 2: no leading zeroes unless the tree is empty.
_TREE_SIZE_PATTERN = re.compile(r"0|[1-9][0-9]*")
# Tree sizes are uint64 in RFC 9162 §4.10 and in every tlog implementation.
MAX_TREE_SIZE = 2**64 - 1


class CheckpointError(ValueError):
    """A checkpoint's text is malformed or its signature does not verify."""


def _validate_line(line: object, what: str) -> str:
    if not isinstance(line, str) or not line:
        raise CheckpointError(f"{what} must be a non-empty string")
    if any(character < " " for character in line):
        # A newline would shift the lines after it; other control characters are banned in notes.
        raise CheckpointError(f"{what} must not contain newlines or control characters")
    return line


@dataclass(frozen=True)
class Checkpoint:
    """A log's tree head: its identity (`origin`), size and RFC 6962 root hash."""

    origin: str
    tree_size: int
    root_hash: bytes
    extensions: Sequence[str] = ()

    def __post_init__(self) -> None:
        _validate_line(self.origin, "origin")
        if isinstance(self.tree_size, bool) or not isinstance(self.tree_size, int):
            raise CheckpointError("tree size must be an integer")
        if not 0 <= self.tree_size <= MAX_TREE_SIZE:
            raise CheckpointError(f"tree size {self.tree_size} is outside 0…2^64−1")
        if not isinstance(self.root_hash, bytes) or len(self.root_hash) != HASH_SIZE_BYTES:
            raise CheckpointError(f"root hash must be {HASH_SIZE_BYTES} bytes")
        if isinstance(self.extensions, str):
            raise CheckpointError("extensions must be a sequence of lines, not one string")
        extensions = tuple(self.extensions)
        for position, line in enumerate(extensions):
            _validate_line(line, f"extension line {position}")
        object.__setattr__(self, "extensions", extensions)

    def to_text(self) -> str:
        lines = [
            self.origin,
            str(self.tree_size),
            base64.b64encode(self.root_hash).decode("ascii"),
            *self.extensions,
        ]
        return "".join(f"{line}\n" for line in lines)

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """Parse checkpoint note text, accepting only what `to_text` would produce."""
        if not isinstance(text, str) or not text.endswith("\n"):
            raise CheckpointError("checkpoint text must end in a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise CheckpointError("checkpoint text needs origin, tree size and root hash lines")
        origin, size_text, root_text, *extensions = lines
        if not _TREE_SIZE_PATTERN.fullmatch(size_text):
            raise CheckpointError(
                f"tree size {size_text!r} is not a decimal without leading zeroes"
            )
        try:
            root_hash = decode_base64_strict(root_text, "root hash")
        except NoteError as error:
            raise CheckpointError(str(error)) from error
        return cls(origin, int(size_text), root_hash, tuple(extensions))


def sign_checkpoint(checkpoint: Checkpoint, signer: NoteSigner) -> str:
    """The checkpoint as a signed note (tlog-checkpoint "Signatures")."""
    return sign_note(checkpoint.to_text(), [signer])


def open_checkpoint(
    note: str, verifier: NoteVerifier, expected_origin: str | None = None
) -> Checkpoint:
    """Verify a signed checkpoint and parse it.

    The origin must equal `expected_origin`, or by default the verifier's key name, which
    tlog-checkpoint says the log's key name SHOULD match: a valid signature by the right key on
    another log's checkpoint must not pass for this log's.
    """
    try:
        opened = open_note(note, [verifier])
    except NoteError as error:
        raise CheckpointError(f"checkpoint signature: {error}") from error
    checkpoint = Checkpoint.parse(opened.text)
    wanted_origin = verifier.name if expected_origin is None else expected_origin
    if checkpoint.origin != wanted_origin:
        raise CheckpointError(f"checkpoint origin {checkpoint.origin!r} is not {wanted_origin!r}")
    return checkpoint
