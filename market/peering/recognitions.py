"""List once, recognised everywhere (一地上架,全国互认: issue 7 §2–3).

An operator whose product is registered and listed at a peer exchange lists it here under the
peer's code, without registering it again. Nothing is taken on the peer's word alone:

- the code is in the consortium's on-chain registry, registered by a configured, active peer;
- its code leaf is included in a checkpoint the peer's key signed, tied to the peer's on-chain
  anchor (`ledger.recognition.recognise_code`);
- the registration data the peer's registry serves hashes to the digest its `applied` leaf
  logged, that leaf proven in a checkpoint consistent with the first;
- the product is listed there, by an operator of the caller's name (organisations are the
  legal entities each exchange's staff vetted).

The recognition is recorded in this exchange's ledger with the evidence. The watch then checks
each recognised code at its exchange and delists here, with the reason shown, when that
exchange cancelled the registration or no longer lists the product (the operator's
authorization there ended, or it delisted it), or when staff suspended the peer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime
from uuid import UUID

import httpx
from asyncpg.exceptions import UniqueViolationError

from ledger.log import append_record
from ledger.recognition import (
    ConsortiumReader,
    RecognisedCode,
    RecognitionError,
    fetch_proven_entry,
    recognise_code,
    verify_extension,
)
from listings import products_service
from listings.codes import UnifiedCode, parse_code
from listings.context import Actor
from listings.domains import DataDomain, DeliveryForm, Grade, Purpose, SubjectKind, UpdateCycle
from listings.errors import ListingsError
from listings.ledger_records import registration_data_digest
from listings.product import Price, Product, QualityIndicators
from listings.registration import RegistrationData
from listings.repository import ProductRecord
from market.errors import ConflictError, InvalidInputError
from market.peering import directory
from market.peering.directory import Peer
from market.peering.ledger_records import CODE_RECOGNISED, RECOGNITION_WITHDRAWN
from market.peering.links import PeerLinks
from market.peering.peer_registry import (
    ProductWire,
    RegistrationDataWire,
    RegistryEntryWire,
    fetch_registry_entry,
)
from market.peering.refusals import record_refusal
from market.peering.tables import RecognitionRow

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class Recognition:
    code: str
    peer_origin: str
    product_id: UUID
    operator_org_id: UUID
    peer_leaf_index: int
    peer_tree_size: int
    anchored_tree_size: int
    leaf_index: int
    state: str
    withdrawn_reason: str
    recognised_at: datetime
    checked_at: datetime


@dataclass(frozen=True)
class ProvenRegistration:
    peer: Peer
    recognised: RecognisedCode
    data: RegistrationData
    entry: RegistryEntryWire


def _now() -> datetime:
    return datetime.now(UTC)


def _registration_data(wire: RegistrationDataWire) -> RegistrationData:
    try:
        return RegistrationData(
            subject_kind=SubjectKind.from_wire(wire.subject_kind.value, "subject_kind"),
            holder=wire.holder, title=wire.title, description=wire.description,
            data_source=wire.data_source,
            domain=DataDomain.from_wire(wire.domain.value, "domain"),
            update_cycle=UpdateCycle.from_wire(wire.update_cycle.value, "update_cycle"),
            permitted_purposes=frozenset(Purpose.from_wire(item.value, "permitted_purposes")
                                         for item in wire.permitted_purposes),
            security_measures=wire.security_measures,
            grade=Grade.from_wire(wire.grade.value, "grade"))
    except ListingsError as error:
        raise RecognitionError(f"the peer's registration data is not valid here: "
                               f"{error}") from error


async def prove_registration(client: httpx.AsyncClient, peer: Peer, code: UnifiedCode,
                             reader: ConsortiumReader) -> ProvenRegistration:
    """Everything the peer says about `code`, checked against its log and anchor."""
    profile = peer.profile
    recognised = await recognise_code(client, profile, str(code), reader)
    entry = await fetch_registry_entry(client, peer.api_base_url, str(code))
    if entry.code != str(code):
        raise RecognitionError(f"the peer's registry answered for {entry.code}, not {code}")
    if entry.state != "registered":
        raise RecognitionError(f"{code} is {entry.state} at {peer.name}")
    current = entry.current
    applied = [event for event in entry.history
               if event.registration_id == current.id and event.step == "applied"]
    if len(applied) != 1:
        raise RecognitionError(f"the peer's registry shows no single application leaf for "
                               f"registration {current.id}")
    proven = await fetch_proven_entry(client, profile, applied[0].leaf_index)
    # Both leaves must be of one history: the application's checkpoint extends the code's.
    await verify_extension(client, profile.api_base_url.rstrip("/"),
                           older_size=recognised.checkpoint.tree_size,
                           older_root=recognised.checkpoint.root_hash, newer=proven.checkpoint)
    payload = proven.record.payload
    if proven.record.kind != "registration.applied" or payload.get("registration_id") != \
            str(current.id):
        raise RecognitionError(f"leaf {applied[0].leaf_index} is not the application of "
                               f"registration {current.id}")
    code_registration = recognised.record.payload.get("registration_id")
    if code_registration != str(current.id) and payload.get("target_code") != str(code):
        raise RecognitionError(f"registration {current.id} is not filed under {code}")
    data = _registration_data(current.data)
    if payload.get("data_sha256") != registration_data_digest(data):
        raise RecognitionError("the registration data the peer's registry serves is not the "
                               "data its log recorded")
    if data.subject_kind is not code.kind:
        raise RecognitionError(f"{code} is a {code.kind.value} code but registers a "
                               f"{data.subject_kind.value}")
    return ProvenRegistration(peer, recognised, data, entry)


async def _peer_of(code: UnifiedCode, links: PeerLinks) -> Peer:
    if code.issuer == links.own_code_issuer:
        raise InvalidInputError(f"{code} was issued by this exchange: list the product here "
                                "under its own registration", field="code")
    on_chain = await links.reader.lookup_code(str(code))
    if on_chain is None:
        raise InvalidInputError(f"{code} is not in the consortium's on-chain registry",
                                field="code")
    peer = await directory.peer_by_chain_address(on_chain.exchange)
    if peer is None or peer.state != "active":
        reason = (f"{code} was registered on chain by {on_chain.exchange}, which is not an "
                  "active peer of this exchange")
        await record_refusal("code_from_non_peer", reason, peer_origin=None if peer is None
                             else peer.origin, evidence={"code": str(code),
                                                         "registered_by": on_chain.exchange})
        raise InvalidInputError(reason, field="code")
    return peer


async def _proven(code: UnifiedCode, peer: Peer, links: PeerLinks) -> ProvenRegistration:
    try:
        return await prove_registration(links.client, peer, code, links.reader)
    except RecognitionError as error:
        await record_refusal("registration_not_proven", str(error), peer_origin=peer.origin,
                             evidence={"code": str(code)})
        raise InvalidInputError(f"{code} could not be verified at {peer.name}: {error}",
                                field="code") from error


def _offered_there(entry: RegistryEntryWire, operator_name: str) -> ProductWire | None:
    for product in entry.listed_products():
        if product.operator_name == operator_name:
            return product
    return None


def _product(actor: Actor, peer: Peer, data: RegistrationData, there: ProductWire,
             prices: tuple[Price, ...]) -> Product:
    return Product(
        operator_id=str(actor.organisation_id), title=data.title,
        description=data.description, domain=data.domain,
        source_resource_codes=frozenset(parse_code(code, "source_resource_codes")
                                        for code in there.source_resource_codes),
        delivery_form=DeliveryForm.from_wire(there.delivery_form.value, "delivery_form"),
        update_cycle=data.update_cycle, grade=data.grade,
        quality=QualityIndicators(
            completeness=there.quality.completeness, accuracy=there.quality.accuracy,
            timeliness=there.quality.timeliness, usability=there.quality.usability,
            machine_readability=there.quality.machine_readability),
        permitted_purposes=data.permitted_purposes, prices=prices, scenario=there.scenario,
        recognised_from=peer.origin)


async def verify_code(code: UnifiedCode, links: PeerLinks) -> ProvenRegistration:
    """Resolve a peer's code here (一地注册,全国互信): everything its exchange says of it,
    proven; a failed check is refused (and kept for staff)."""
    return await _proven(code, await _peer_of(code, links), links)


async def _record_recognition(actor: Actor, code: UnifiedCode, peer: Peer,
                              recognised: RecognisedCode, product: Product, *,
                              links: PeerLinks, today: date, now: datetime) -> ProductRecord:
    """The listing, the recognition row and its leaf, in one transaction."""
    async with RecognitionRow._meta.db.transaction():
        record = await products_service.list_recognised(actor, product, code, today=today,
                                                        directory=links.operators)
        await RecognitionRow.raw(
            "INSERT INTO peering_recognitions (code, peer_origin, product_id, operator_org_id, "
            "peer_leaf_index, peer_leaf_hash, peer_tree_size, peer_root_hash, "
            "anchored_tree_size, checkpoint_note, leaf_index, state, recognised_at, checked_at) "
            "VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, -1, 'recognised', {}, {})",
            str(code), peer.origin, record.id, actor.organisation_id, recognised.leaf_index,
            recognised.leaf_hash, recognised.checkpoint.tree_size,
            recognised.checkpoint.root_hash, recognised.anchored_tree_size,
            recognised.checkpoint_note, now, now).run()
        # Last, as the ledger asks: from the append to the commit other appenders wait.
        leaf = await append_record(
            CODE_RECOGNISED, actor=actor.ledger_name, subject=str(code),
            payload={"code": str(code), "peer_origin": peer.origin,
                     "peer_leaf_index": recognised.leaf_index,
                     "peer_leaf_hash": recognised.leaf_hash.hex(),
                     "peer_tree_size": recognised.checkpoint.tree_size,
                     "peer_root_hash": recognised.checkpoint.root_hash.hex(),
                     "anchored_tree_size": recognised.anchored_tree_size,
                     "product_id": str(record.id)},
            recorded_at=now)
        await RecognitionRow.raw("UPDATE peering_recognitions SET leaf_index = {} WHERE code = {}",
                                 leaf.leaf_index, str(code)).run()
    return record


async def recognise_and_list(actor: Actor, code: UnifiedCode, prices: tuple[Price, ...], *,
                             links: PeerLinks, today: date) -> tuple[Recognition, ProductRecord]:
    """Verify `code` at the peer that registered it and list its product here, at `prices`
    (this exchange's own, under its own caps)."""
    if await get(str(code)) is not None:
        raise ConflictError(f"{code} is already recognised here", field="code")
    operator_name = await links.operators.operator_name(actor.organisation_id)
    if operator_name is None:
        raise InvalidInputError("the caller is not an operator organisation", field="code")
    peer = await _peer_of(code, links)
    proven = await _proven(code, peer, links)
    there = _offered_there(proven.entry, operator_name)
    if there is None:
        raise InvalidInputError(f"{peer.name} lists no product under {code} by {operator_name}; "
                                "only the operator that lists it there may list it here",
                                field="code")
    product = _product(actor, peer, proven.data, there, prices)
    now = _now()
    try:
        record = await _record_recognition(actor, code, peer, proven.recognised, product,
                                           links=links, today=today, now=now)
    except UniqueViolationError as error:
        # Another request recognised the same code a moment before this one committed.
        raise ConflictError(f"{code} is already recognised here", field="code") from error
    stored = await get(str(code))
    assert stored is not None
    return stored, record


_COLUMNS = ("code, peer_origin, product_id, operator_org_id, peer_leaf_index, peer_tree_size, "
            "anchored_tree_size, leaf_index, state, withdrawn_reason, recognised_at, checked_at")


async def _select(where: str, *args: object) -> list[Recognition]:
    rows = await RecognitionRow.raw(
        f"SELECT {_COLUMNS} FROM peering_recognitions WHERE {where} ORDER BY code",  # noqa: S608 -- constant SQL
        *args).run()
    return [Recognition(**dict(row)) for row in rows]


async def get(code: str) -> Recognition | None:
    found = await _select("code = {}", code)
    return found[0] if found else None


async def list_for(actor: Actor) -> list[Recognition]:
    """All recognitions for staff and the regulator; an operator's own for an operator."""
    if actor.role == "operator":
        return await _select("operator_org_id = {}", actor.organisation_id)
    return await _select("TRUE")


async def _withdrawal_reason(recognition: Recognition, peer: Peer | None,
                             client: httpx.AsyncClient, operator_name: str | None) -> str | None:
    if peer is None or peer.state != "active":
        return f"the exchange that registered {recognition.code} is no longer an active peer"
    entry = await fetch_registry_entry(client, peer.api_base_url, recognition.code)
    if entry.state != "registered":
        when = f" on {entry.cancelled_on}" if entry.cancelled_on else ""
        return f"{peer.name} cancelled registration {recognition.code}{when}"
    if operator_name is None or _offered_there(entry, operator_name) is None:
        reasons = sorted({product.delisting_reason for product in entry.products
                          if product.operator_name == operator_name and product.delisting_reason})
        said = f": {'; '.join(reasons)}" if reasons else ""
        return f"{peer.name} no longer lists {recognition.code}{said}"
    return None


async def watch(links: PeerLinks) -> list[str]:
    """Check every recognised code at its exchange; withdraw (and delist) those that ended
    there. A peer that cannot be reached now is tried again next time. Returns the codes
    withdrawn."""
    withdrawn: list[str] = []
    for recognition in await _select("state = 'recognised'"):
        peer = await directory.peer_by_origin(recognition.peer_origin)
        operator_name = await links.operators.operator_name(recognition.operator_org_id)
        try:
            reason = await _withdrawal_reason(recognition, peer, links.client, operator_name)
        except RecognitionError as error:
            log.warning("could not check %s at %s: %s", recognition.code,
                        recognition.peer_origin, error)
            continue
        if reason is None:
            await RecognitionRow.raw("UPDATE peering_recognitions SET checked_at = {} "
                                     "WHERE code = {}", _now(), recognition.code).run()
            continue
        await withdraw(recognition.code, reason)
        withdrawn.append(recognition.code)
    return withdrawn


async def withdraw(code: str, reason: str, *, actor: str = "system") -> None:
    """End a recognition: delist its product here with `reason`, and ledger it."""
    now = _now()
    async with RecognitionRow._meta.db.transaction():
        rows = await RecognitionRow.raw(
            "SELECT code FROM peering_recognitions WHERE code = {} AND state = 'recognised' "
            "FOR UPDATE", code).run()
        if not rows:
            return
        delisted = await products_service.delist_recognised(parse_code(code), reason=reason)
        leaf = await append_record(
            RECOGNITION_WITHDRAWN, actor=actor, subject=code,
            payload={"code": code, "reason": reason,
                     "delisted": sorted(str(product_id) for product_id in delisted)},
            recorded_at=now)
        await RecognitionRow.raw(
            "UPDATE peering_recognitions SET state = 'withdrawn', withdrawn_reason = {}, "
            "withdrawal_leaf_index = {}, checked_at = {} WHERE code = {}",
            reason, leaf.leaf_index, now, code).run()
