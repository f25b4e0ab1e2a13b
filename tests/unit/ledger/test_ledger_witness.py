"""The witness's rules for add-checkpoint (c2sp.org/tlog-witness), over an in-memory log."""

from __future__ import annotations

import base64

import pytest

from ledger.checkpoint import Checkpoint
from ledger.note import NoteSigner
from ledger.witness import (
    MAX_PROOF_LINES,
    Accepted,
    AddCheckpointRequest,
    Inconsistent,
    Refused,
    SizeMismatch,
    WitnessRequestError,
    decide,
    evidence,
    parse_size_answer,
    signature_lines,
)
from tests.unit.ledger.memory_log import MemoryLog, entries

ORIGIN = "peer.test/ledger"
LOG = NoteSigner.generate(ORIGIN)


def request(old: int, proof: tuple[bytes, ...], note: str) -> AddCheckpointRequest:
    return AddCheckpointRequest.parse(AddCheckpointRequest(old, proof, note).to_body())


def test_the_request_body_round_trips():
    log = MemoryLog(LOG, entries(13))
    body = AddCheckpointRequest(7, log.proof(7, 13), log.note(13)).to_body()
    assert body.startswith("old 7\n")
    assert "\n\n" + ORIGIN + "\n13\n" in body
    parsed = AddCheckpointRequest.parse(body)
    assert (parsed.old_size, parsed.proof, parsed.checkpoint_note) == (
        7, log.proof(7, 13), log.note(13))


@pytest.mark.parametrize(("body", "message"), [
    ("old 07\n\nx\n", "leading zeroes"),
    ("old -1\n\nx\n", "leading zeroes"),
    ("new 1\n\nx\n", "old <size>"),
    ("old 1\nnot base64!\n\nx\n", "base64"),
    ("old 1\n", "empty line"),
    ("old 1\n" + "AAAA\n" * (MAX_PROOF_LINES + 1) + "\nx\n", "63"),
])
def test_malformed_bodies_are_bad_requests(body, message):
    with pytest.raises(WitnessRequestError, match=message):
        AddCheckpointRequest.parse(body)


def test_the_first_checkpoint_of_a_log_is_accepted_with_old_size_zero():
    log = MemoryLog(LOG, entries(9))
    decision = decide(request(0, (), log.note(9)), LOG.verifier, None)
    assert isinstance(decision, Accepted)
    assert decision.checkpoint.tree_size == 9
    assert decision.checkpoint_text == Checkpoint.parse(decision.checkpoint_text).to_text()


def test_a_consistent_extension_is_accepted():
    log = MemoryLog(LOG, entries(40))
    decision = decide(request(9, log.proof(9, 40), log.note(40)), LOG.verifier, log.witnessed(9))
    assert isinstance(decision, Accepted)
    assert decision.signed_note == log.note(40)


def test_an_unknown_origin_is_404_and_an_untrusted_signature_403():
    log = MemoryLog(LOG, entries(3))
    assert decide(request(0, (), log.note(3)), None, None).status == 404
    impostor = NoteSigner.generate(ORIGIN)
    refused = decide(request(0, (), log.note(3, impostor)), LOG.verifier, None)
    assert isinstance(refused, Refused)
    assert refused.status == 403


def test_an_old_size_beyond_the_checkpoint_is_400():
    log = MemoryLog(LOG, entries(5))
    assert decide(request(6, (), log.note(5)), LOG.verifier, log.witnessed(5)).status == 400


def test_an_old_size_that_is_not_the_witnesss_is_409_with_its_size():
    log = MemoryLog(LOG, entries(20))
    decision = decide(request(4, log.proof(4, 20), log.note(20)), LOG.verifier,
                      log.witnessed(9))
    assert decision == SizeMismatch(9)
    assert decide(request(0, (), log.note(20)), LOG.verifier, log.witnessed(9)) == \
        SizeMismatch(9)
    assert parse_size_answer("9\n") == 9
    with pytest.raises(WitnessRequestError):
        parse_size_answer("09\n")


def test_a_non_extending_checkpoint_is_refused_and_kept_as_evidence():
    honest, forked = MemoryLog(LOG, entries(20)), MemoryLog(LOG, entries(20, tag=" rewritten"))
    # The forked log proves its new tree from its own old tree, not the one witnessed.
    decision = decide(request(9, forked.proof(9, 20), forked.note(20)), LOG.verifier,
                      honest.witnessed(9))
    assert isinstance(decision, Inconsistent)
    assert decision.status == 422
    kept = evidence(decision)
    assert kept["known_checkpoint"] == honest.note(9)
    assert kept["presented_checkpoint"] == forked.note(20)
    assert kept["consistency_proof"] == [base64.b64encode(element).decode()
                                         for element in forked.proof(9, 20)]


def test_a_different_root_at_the_same_size_is_409_evidence():
    honest, forked = MemoryLog(LOG, entries(9)), MemoryLog(LOG, entries(9, tag=" rewritten"))
    decision = decide(request(9, (), forked.note(9)), LOG.verifier, honest.witnessed(9))
    assert isinstance(decision, Inconsistent)
    assert decision.status == 409
    same = decide(request(9, (), honest.note(9)), LOG.verifier, honest.witnessed(9))
    assert isinstance(same, Accepted)


def test_proofs_where_none_is_due_are_bad_requests():
    log = MemoryLog(LOG, entries(9))
    assert decide(request(0, log.proof(3, 9), log.note(9)), LOG.verifier, None).status == 400
    assert decide(request(9, log.proof(3, 9), log.note(9)), LOG.verifier,
                  log.witnessed(9)).status == 400


def test_a_cosignature_answer_is_signature_lines():
    assert signature_lines("\u2014 a AAAA\n\u2014 b BBBB\n") == ["\u2014 a AAAA\n",
                                                                  "\u2014 b BBBB\n"]
    with pytest.raises(WitnessRequestError):
        signature_lines("\u2014 a AAAA")
