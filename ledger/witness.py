"""A witness's rules (c2sp.org/tlog-witness `add-checkpoint`), without storage or HTTP.

The request body is an old size line, up to 63 consistency proof lines, an empty line and the
signed checkpoint. The witness keeps, per log origin, the latest checkpoint it verified; it
cosigns a checkpoint only when a consistency proof ties it to that one, and keeps the two signed
notes as evidence when the log cannot prove that its new tree extends the old.

The same rules judge a checkpoint this exchange fetched from a peer itself (a poll): the poll
is a submission whose old size is the witness's own and whose proof the peer served.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass

from ledger.checkpoint import Checkpoint, CheckpointError, open_checkpoint
from ledger.note import NoteError, NoteVerifier, decode_base64_strict, split_signed_note
from ledger.proofs import ProofError, verify_consistency

# tlog-witness: "The client MUST NOT send more than 63 consistency proof lines."
MAX_PROOF_LINES = 63
# tlog-witness: the 409 answer's body is the witness's size, with this content type.
TREE_SIZE_MEDIA_TYPE = "text/x.tlog.size"
_DECIMAL = re.compile(r"0|[1-9][0-9]*")


class WitnessRequestError(ValueError):
    """An add-checkpoint body is malformed (answered 400 Bad Request)."""


@dataclass(frozen=True)
class AddCheckpointRequest:
    old_size: int
    proof: tuple[bytes, ...]
    checkpoint_note: str

    @classmethod
    def parse(cls, body: str) -> AddCheckpointRequest:
        header, separator, note = body.partition("\n\n")
        if not separator:
            raise WitnessRequestError("the body needs an empty line before the checkpoint")
        old_line, *proof_lines = header.split("\n")
        old_text = old_line.removeprefix("old ")
        if old_text == old_line or not _DECIMAL.fullmatch(old_text):
            raise WitnessRequestError("the first line must be 'old <size>', a decimal without "
                                      "leading zeroes")
        if len(proof_lines) > MAX_PROOF_LINES:
            raise WitnessRequestError(f"more than {MAX_PROOF_LINES} consistency proof lines")
        try:
            proof = tuple(decode_base64_strict(line, "consistency proof line")
                          for line in proof_lines)
            split_signed_note(note)
        except NoteError as error:
            raise WitnessRequestError(str(error)) from error
        return cls(int(old_text), proof, note)

    def to_body(self) -> str:
        proof = "".join(base64.b64encode(element).decode("ascii") + "\n"
                        for element in self.proof)
        return f"old {self.old_size}\n{proof}\n{self.checkpoint_note}"

    def claimed_checkpoint(self) -> Checkpoint:
        """The checkpoint as written, before any signature is checked: its origin says which
        log's keys to check it with."""
        text, _ = split_signed_note(self.checkpoint_note)
        try:
            return Checkpoint.parse(text)
        except CheckpointError as error:
            raise WitnessRequestError(f"checkpoint: {error}") from error


@dataclass(frozen=True)
class WitnessedCheckpoint:
    """The latest checkpoint the witness verified for one log."""

    tree_size: int
    root_hash: bytes
    note: str


# The outcomes of a submission, each with the HTTP status tlog-witness gives it.

@dataclass(frozen=True)
class Accepted:
    """Consistent: the witness records it and cosigns it (200)."""

    checkpoint: Checkpoint
    checkpoint_text: str
    signed_note: str
    status: int = 200


@dataclass(frozen=True)
class SizeMismatch:
    """The old size is not the witness's (409, body: the witness's size)."""

    known_size: int
    status: int = 409


@dataclass(frozen=True)
class Refused:
    """Unknown origin (404), no trusted signature (403), or an impossible old size (400)."""

    status: int
    reason: str


@dataclass(frozen=True)
class Inconsistent:
    """A validly signed checkpoint the log cannot prove extends the witness's: 409 when the
    sizes are equal and the roots differ, 422 when the consistency proof fails. Both signed
    notes and the proof are the evidence."""

    status: int
    reason: str
    known: WitnessedCheckpoint
    presented_note: str
    proof: tuple[bytes, ...]


Decision = Accepted | SizeMismatch | Refused | Inconsistent


def decide(request: AddCheckpointRequest, verifier: NoteVerifier | None,
           known: WitnessedCheckpoint | None) -> Decision:
    """Judge a submission against the log's key (None: origin unknown) and the witness's state,
    in the order tlog-witness lists the checks."""
    admitted = _signed_and_sized(request, verifier, known)
    if not isinstance(admitted, Checkpoint):
        return admitted
    if known is None or known.tree_size == 0:
        if request.proof:
            return Refused(400, "the consistency proof must be empty when the old size is 0")
        return Accepted(admitted, admitted.to_text(), request.checkpoint_note)
    return _judge_consistency(request, admitted, known)


def _signed_and_sized(request: AddCheckpointRequest, verifier: NoteVerifier | None,
                      known: WitnessedCheckpoint | None) -> Checkpoint | Refused | SizeMismatch:
    claimed = request.claimed_checkpoint()
    if verifier is None:
        return Refused(404, f"unknown log origin {claimed.origin!r}")
    try:
        checkpoint = open_checkpoint(request.checkpoint_note, verifier,
                                     expected_origin=claimed.origin)
    except CheckpointError as error:
        return Refused(403, f"no valid signature by the log's key: {error}")
    if request.old_size > checkpoint.tree_size:
        return Refused(400, f"old size {request.old_size} exceeds the checkpoint's size "
                            f"{checkpoint.tree_size}")
    known_size = 0 if known is None else known.tree_size
    if request.old_size != known_size:
        return SizeMismatch(known_size)
    return checkpoint


def _judge_consistency(request: AddCheckpointRequest, checkpoint: Checkpoint,
                       known: WitnessedCheckpoint) -> Decision:
    if known.tree_size == checkpoint.tree_size:
        if known.root_hash != checkpoint.root_hash:
            return Inconsistent(409, f"two checkpoints of size {known.tree_size} with "
                                     "different roots", known, request.checkpoint_note,
                                request.proof)
        if request.proof:
            return Refused(400, "the consistency proof between equal sizes must be empty")
        return Accepted(checkpoint, checkpoint.to_text(), request.checkpoint_note)
    try:
        verify_consistency(known.tree_size, checkpoint.tree_size, request.proof,
                           known.root_hash, checkpoint.root_hash)
    except ProofError as error:
        return Inconsistent(422, f"size {checkpoint.tree_size} is not proven to extend size "
                                 f"{known.tree_size}: {error}", known, request.checkpoint_note,
                            request.proof)
    return Accepted(checkpoint, checkpoint.to_text(), request.checkpoint_note)


def evidence(inconsistent: Inconsistent) -> dict[str, object]:
    """The JSON-ready evidence: both signed notes and the proof that failed (base64)."""
    return {"known_checkpoint": inconsistent.known.note,
            "presented_checkpoint": inconsistent.presented_note,
            "consistency_proof": [base64.b64encode(element).decode("ascii")
                                  for element in inconsistent.proof],
            "reason": inconsistent.reason}


def parse_size_answer(body: str) -> int:
    """The body of a 409 answer: the witness's tree size and a newline."""
    if not body.endswith("\n") or not _DECIMAL.fullmatch(body[:-1]):
        raise WitnessRequestError(f"a tree size answer is a decimal and a newline, not "
                                  f"{body[:40]!r}")
    return int(body[:-1])


def signature_lines(body: str) -> Sequence[str]:
    """The newline-terminated signature lines of a 200 answer."""
    if not body.endswith("\n"):
        raise WitnessRequestError("a cosignature answer ends in a newline")
    return [line + "\n" for line in body[:-1].split("\n")]
