"""Witnessing between exchanges (issue 7 §5): each exchange is a C2SP tlog-witness for its
peers' logs, asks its peers to witness its own, and watches each peer's published checkpoint
so that a peer that forks its history is caught even if it never asks to be witnessed.

A peer's checkpoint is judged with the key of an *active* peer in the directory only; what a
peer could not prove is kept as evidence (ledger.witness_store) and as a refusal for staff.
"""

from __future__ import annotations

import base64
import logging
import time
from dataclasses import dataclass

import httpx

from ledger import serving
from ledger.checkpoint import Checkpoint, CheckpointError, open_checkpoint
from ledger.cosignature import (
    CosignatureError,
    CosignatureVerifier,
    Cosigner,
    verified_cosignatures,
    with_signature_lines,
)
from ledger.cosignature_store import latest_cosigned_size, store_cosignatures
from ledger.note import NoteVerifier
from ledger.proofs import ProofError, verify_consistency
from ledger.witness import (
    TREE_SIZE_MEDIA_TYPE,
    Accepted,
    AddCheckpointRequest,
    Inconsistent,
    Refused,
    SizeMismatch,
    WitnessedCheckpoint,
    WitnessRequestError,
    evidence,
    parse_size_answer,
    signature_lines,
)
from ledger.witness_store import (
    POLL,
    SUBMISSION,
    Witnessed,
    known_checkpoint,
    raise_alert,
    witness_checkpoint,
)
from market.errors import (
    ConflictError,
    InvalidInputError,
    MarketError,
    NotFoundError,
    PermissionDeniedError,
)
from market.peering.directory import Peer, active_peers, peer_by_origin
from market.peering.refusals import record_refusal

logger = logging.getLogger("market.witnessing")

REFUSAL_KIND = "checkpoint"


@dataclass(frozen=True)
class CosignedAnswer:
    """The 200 answer: the witness's cosignature lines."""

    body: str


@dataclass(frozen=True)
class SizeAnswer:
    """The 409 answer to a stale old size: the witness's size, as tlog-witness words it."""

    body: str
    media_type: str = TREE_SIZE_MEDIA_TYPE


async def _trusted_verifier(origin: str) -> NoteVerifier | None:
    peer = await peer_by_origin(origin)
    return peer.verifier if peer is not None and peer.state == "active" else None


async def add_checkpoint(body: str, cosigner: Cosigner) -> CosignedAnswer | SizeAnswer:
    """`POST /witness/add-checkpoint`: cosign a peer's checkpoint that extends the one this
    witness verified before, or refuse it in the way tlog-witness prescribes."""
    try:
        request = AddCheckpointRequest.parse(body)
        origin = request.claimed_checkpoint().origin
    except WitnessRequestError as error:
        raise MarketError(str(error), field="body") from error
    witnessed = await witness_checkpoint(request, await _trusted_verifier(origin),
                                         source=SUBMISSION, cosigner=cosigner,
                                         timestamp=int(time.time()))
    decision = witnessed.decision
    if isinstance(decision, Accepted):
        assert witnessed.cosignature is not None  # a cosigner was given
        return CosignedAnswer(witnessed.cosignature.line)
    if isinstance(decision, SizeMismatch):
        return SizeAnswer(f"{decision.known_size}\n")
    await _keep_refusal(origin, witnessed, request.checkpoint_note)
    if isinstance(decision, Inconsistent):
        error_type: type[MarketError] = ConflictError if decision.status == 409 \
            else InvalidInputError
        raise error_type(decision.reason, field="body")
    error_type = {403: PermissionDeniedError, 404: NotFoundError}.get(decision.status,
                                                                      MarketError)
    raise error_type(decision.reason, field="body")


async def _keep_refusal(origin: str, witnessed: Witnessed, note: str) -> None:
    decision = witnessed.decision
    if isinstance(decision, Inconsistent):
        detail: dict[str, object] = {**evidence(decision), "witness_alert_id": witnessed.alert_id}
        await record_refusal(REFUSAL_KIND, decision.reason, peer_origin=origin, evidence=detail)
    elif isinstance(decision, Refused) and decision.status in (403, 404):
        await record_refusal(REFUSAL_KIND, decision.reason,
                             peer_origin=origin if decision.status == 403 else None,
                             evidence={"checkpoint": note})


# ---------------------------------------------------------------- this log, witnessed by peers

async def submit_checkpoint_to_witnesses(client: httpx.AsyncClient) -> int:
    """Ask every active peer's witness to cosign this log's newest checkpoint, proving it
    extends the size that witness last cosigned; keep the cosignatures that verify. Returns
    how many new cosignatures were kept."""
    try:
        newest = await serving.latest_checkpoint()
    except serving.LedgerLookupError:
        return 0
    kept = 0
    for peer in await active_peers():
        witness = peer.profile.witness
        if witness is None:
            continue
        try:
            kept += await _submit(client, peer, witness, newest)
        except (httpx.HTTPError, WitnessRequestError, CosignatureError,
                serving.LedgerLookupError) as error:
            logger.warning("witness %s did not cosign size %d: %s", witness.name,
                           newest.tree_size, error)
    return kept


async def _submit(client: httpx.AsyncClient, peer: Peer, witness: CosignatureVerifier,
                  newest: serving.StoredCheckpoint) -> int:
    old_size = await latest_cosigned_size(witness)
    url = f"{peer.api_base_url.rstrip('/')}/witness/add-checkpoint"
    # One retry: a 409 tells the witness's own size (it may have polled this log further than
    # it cosigned), from which the proof is made again.
    for _ in range(2):
        if old_size >= newest.tree_size and old_size != 0:
            if old_size > newest.tree_size:
                logger.error("witness %s claims size %d of this log, beyond its newest "
                             "checkpoint %d", witness.name, old_size, newest.tree_size)
            return 0
        proof = await _proof(old_size, newest.tree_size)
        body = AddCheckpointRequest(old_size, proof, newest.note).to_body()
        response = await client.post(url, content=body.encode("utf-8"),
                                     headers={"Content-Type": "text/plain; charset=utf-8"})
        if response.status_code == 409 and response.headers.get(
                "content-type", "").startswith(TREE_SIZE_MEDIA_TYPE):
            old_size = parse_size_answer(response.text)
            continue
        if response.status_code != 200:
            raise WitnessRequestError(f"HTTP {response.status_code}: {response.text[:200]}")
        cosigned = with_signature_lines(newest.note, signature_lines(response.text))
        _, cosignatures = verified_cosignatures(cosigned, [witness])
        if not cosignatures:
            raise WitnessRequestError("the answer carries no cosignature by the witness's key")
        return await store_cosignatures(newest.tree_size, cosignatures)
    return 0


async def _proof(old_size: int, new_size: int) -> tuple[bytes, ...]:
    if old_size in (0, new_size):
        return ()
    return tuple((await serving.consistency_proof(old_size, new_size)).proof)


# ---------------------------------------------------------------- peers' logs, watched here

async def watch_peer_checkpoints(client: httpx.AsyncClient) -> int:
    """Fetch each active peer's newest checkpoint and check it against the one verified
    before; returns how many peers were caught presenting an inconsistent history."""
    caught = 0
    for peer in await active_peers():
        try:
            caught += await _watch(client, peer)
        except httpx.HTTPError as error:
            logger.warning("peer %s unreachable: %s", peer.origin, error)
    return caught


async def _watch(client: httpx.AsyncClient, peer: Peer) -> int:
    base = peer.api_base_url.rstrip("/")
    response = await client.get(f"{base}/ledger/checkpoint")
    if response.status_code != 200:
        return 0
    note = response.text
    try:
        checkpoint = open_checkpoint(note, peer.verifier, expected_origin=peer.origin)
    except CheckpointError as error:
        await record_refusal(REFUSAL_KIND, f"the peer's published checkpoint: {error}",
                             peer_origin=peer.origin, evidence={"checkpoint": note})
        return 0
    known = await known_checkpoint(peer.origin)
    if known is not None and checkpoint.tree_size < known.tree_size:
        return await _check_older(client, peer, checkpoint, note, known)
    old_size = 0 if known is None else known.tree_size
    proof = () if old_size in (0, checkpoint.tree_size) else await _peer_proof(
        client, base, old_size, checkpoint.tree_size)
    witnessed = await witness_checkpoint(AddCheckpointRequest(old_size, proof, note),
                                         peer.verifier, source=POLL, cosigner=None,
                                         timestamp=int(time.time()))
    if isinstance(witnessed.decision, Inconsistent):
        await _keep_refusal(peer.origin, witnessed, note)
        return 1
    return 0


async def _peer_proof(client: httpx.AsyncClient, base: str, first: int,
                      second: int) -> tuple[bytes, ...]:
    """The peer's consistency proof; none (so the check fails with the evidence kept) when
    the peer refuses to give one or gives garbage. A server error is passed on: try later."""
    response = await client.get(f"{base}/ledger/consistency",
                                params={"from": first, "to": second})
    if response.status_code >= 500:
        raise httpx.HTTPStatusError(f"HTTP {response.status_code}", request=response.request,
                                    response=response)
    try:
        document = response.json() if response.status_code == 200 else {}
        return tuple(base64.b64decode(element, validate=True)
                     for element in document.get("proof", []))
    except (ValueError, TypeError, AttributeError):
        return ()


async def _check_older(client: httpx.AsyncClient, peer: Peer, checkpoint: Checkpoint,
                       note: str, known: WitnessedCheckpoint) -> int:
    """A smaller checkpoint than one already verified: a stale view is fine if the peer proves
    the larger tree extends it; otherwise the peer signed two histories."""
    # A smaller size of 0 gets no proof, and verifying fails: a log does not shrink to empty.
    proof: tuple[bytes, ...] = ()
    try:
        proof = await _peer_proof(client, peer.api_base_url.rstrip("/"), checkpoint.tree_size,
                                  known.tree_size)
        verify_consistency(checkpoint.tree_size, known.tree_size, proof, checkpoint.root_hash,
                           known.root_hash)
    except ProofError as error:
        inconsistent = Inconsistent(
            422, f"the peer now publishes size {checkpoint.tree_size}, not proven to be a "
                 f"prefix of size {known.tree_size} it signed before: {error}",
            known, note, proof)
        alert_id = await raise_alert(peer.origin, source=POLL, summary=inconsistent.reason,
                                     detail=evidence(inconsistent))
        await _keep_refusal(peer.origin, Witnessed(inconsistent, alert_id=alert_id), note)
        return 1
    return 0
