"""Use cases of registration and code assignment (登记赋码, MISSION §2).

Each step is one transaction: the registration row, its objections, its history event, the
registry entry and any product it links or delists, and the ledger record commit together.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from uuid import UUID, uuid4

from ledger.chain import queue_code_registration
from ledger.entries import JSONValue
from ledger.log import AppendedLeaf, append_record
from listings import registration as model
from listings import repository
from listings.codes import UnifiedCode
from listings.context import SYSTEM, Actor
from listings.domains import SubjectKind
from listings.errors import DomainRuleError, DomainValueError, ListingsError, NotFoundError
from listings.ledger_records import registration_data_digest
from listings.registration import (
    Registration,
    RegistrationData,
    RegistrationKind,
    RegistrationState,
)
from listings.repository import (
    ProductRecord,
    RegistrationEventRecord,
    RegistrationRecord,
    RegistryRecord,
)
from listings.transactions import transaction

# Roles that see every registration; an operator sees only its own applications.
OVERSEEING_ROLES = frozenset({"staff", "regulator"})


def _now() -> datetime:
    return datetime.now(UTC)


async def _record_step(
    actor: Actor,
    registration_id: UUID,
    registration: Registration,
    step: str,
    *,
    detail: str = "",
    payload: dict[str, JSONValue] | None = None,
) -> AppendedLeaf:
    """Append the ledger record of a step, then its history event; returns the leaf."""
    now = _now()
    body: dict[str, JSONValue] = {
        "registration_id": str(registration_id),
        "kind": registration.kind.value,
        "subject_kind": registration.data.subject_kind.value,
        "state": registration.state.value,
    }
    if registration.target_code is not None:
        body["target_code"] = str(registration.target_code)
    body.update(payload or {})
    leaf = await append_record(
        f"registration.{step}",
        actor=actor.ledger_name,
        subject=f"registration:{registration_id}",
        payload=body,
    )
    await repository.insert_registration_event(
        RegistrationEventRecord(
            registration_id=registration_id,
            step=step,
            state=registration.state.value,
            detail=detail,
            actor=actor.ledger_name,
            leaf_index=leaf.leaf_index,
            occurred_at=now,
        )
    )
    return leaf


async def _current_of(code: UnifiedCode, *, lock: bool) -> tuple[RegistryRecord, Registration]:
    entry = await repository.get_registry_entry(code, lock=lock)
    if entry is None:
        raise NotFoundError("target_code", f"{code} is not in the registry")
    current = await repository.get_registration(entry.current_registration_id)
    if current is None:  # the foreign key guarantees it
        raise RuntimeError(f"the registry entry {code} has no registration")
    return entry, current.registration


async def apply(  # noqa: PLR0912 -- one branch per registration kind, kept side by side
    actor: Actor,
    *,
    kind: RegistrationKind,
    data: RegistrationData | None,
    target_code: UnifiedCode | None,
    statement: str,
    product_id: UUID | None,
    today: date,
) -> RegistrationRecord:
    """An operator applies to register one of its resources, products or services.

    A first registration of a product names the operator's own draft product (``product_id``)
    that the code will be given to. Change, correction and cancellation refer to a code the
    operator holds; a cancellation repeats the registered data, so it carries none.
    """
    async with transaction():
        if kind is RegistrationKind.FIRST:
            if data is None:
                raise DomainValueError("data", "a first registration needs its data")
            if target_code is not None:
                raise DomainRuleError("target_code", "a first registration refers to no code")
            await _check_product_link(actor, data, product_id)
            await _check_not_registered_at_peer(actor, data)
            registration = model.apply_first(data, applied_on=today)
        else:
            if target_code is None:
                raise DomainValueError("target_code", f"a {kind.value} registration needs it")
            if product_id is not None:
                raise DomainRuleError("product_id", "only a first registration names a product")
            entry, current = await _current_of(target_code, lock=False)
            if entry.holder_org_id != actor.organisation_id:
                # Another operator's code answers as unknown (tenant isolation).
                raise NotFoundError("target_code", f"{target_code} is not in the registry")
            if kind is RegistrationKind.CANCELLATION:
                if data is not None:
                    raise DomainRuleError("data", "a cancellation repeats the registered data")
                registration = model.apply_cancellation(
                    current, statement=statement, applied_on=today
                )
            else:
                if data is None:
                    raise DomainValueError("data", f"a {kind.value} registration needs its data")
                registration = model.apply_amendment(
                    kind, data, target=current, statement=statement, applied_on=today
                )
        registration_id = uuid4()
        await repository.insert_registration(
            registration_id, actor.organisation_id, product_id, registration, _now()
        )
        payload: dict[str, JSONValue] = {"applicant_id": str(actor.organisation_id)}
        if product_id is not None:
            payload["product_id"] = str(product_id)
        # The data never changes after the application; its digest lets reconciliation see
        # any later edit of the stored row (listings.ledger_records).
        payload["data_sha256"] = registration_data_digest(registration.data)
        await _record_step(actor, registration_id, registration, "applied", payload=payload)
        stored = await repository.get_registration(registration_id)
    if stored is None:
        raise RuntimeError("the registration vanished")
    return stored


async def _check_not_registered_at_peer(actor: Actor, data: RegistrationData) -> None:
    """一地注册,全国互信: what this operator lists here on a peer's registration is registered
    there; registering it again here would give one product two codes."""
    record = await repository.recognised_product_titled(actor.organisation_id, data.title)
    if record is not None:
        raise DomainRuleError(
            "data.title",
            f"{data.title} is registered at {record.product.recognised_from} as "
            f"{record.registration_code} and listed here by recognition; it is not registered "
            "twice",
        )


async def _check_product_link(
    actor: Actor, data: RegistrationData, product_id: UUID | None
) -> None:
    if data.subject_kind is not SubjectKind.PRODUCT:
        if product_id is not None:
            raise DomainRuleError("product_id", "only a product registration names a product")
        return
    if product_id is None:
        raise DomainValueError("product_id", "a product registration names the product")
    product = await repository.get_product(product_id)
    if product is None or product.operator_id != actor.organisation_id:
        raise NotFoundError("product_id", "no such product")
    if product.registration_code is not None:
        raise DomainRuleError(
            "product_id", f"the product is already registered as {product.registration_code}"
        )
    if product.product.domain is not data.domain:
        raise DomainRuleError(
            "data.domain", f"the product's domain is {product.product.domain.value}"
        )
    if product.product.grade is not data.grade:
        raise DomainRuleError("data.grade", f"the product's grade is {product.product.grade.value}")
    pending = await repository.list_registrations(applicant_id=actor.organisation_id)
    for other in pending:
        if other.product_id == product_id and not other.registration.state.is_final:
            raise DomainRuleError(
                "product_id", f"the product already has registration {other.id} under way"
            )


async def get(actor: Actor, registration_id: UUID) -> RegistrationRecord:
    record = await repository.get_registration(registration_id)
    if record is None or (
        actor.role not in OVERSEEING_ROLES and record.applicant_id != actor.organisation_id
    ):
        raise NotFoundError("registration_id", "no such registration")
    return record


async def list_for(
    actor: Actor, *, states: list[RegistrationState] | None = None
) -> list[RegistrationRecord]:
    applicant = None if actor.role in OVERSEEING_ROLES else actor.organisation_id
    return await repository.list_registrations(applicant_id=applicant, states=states)


async def in_notice() -> list[RegistrationRecord]:
    """Registrations under public notice (公示): public, so anyone can object."""
    return await repository.list_registrations(states=[RegistrationState.IN_NOTICE])


async def _transition(
    actor: Actor,
    registration_id: UUID,
    step: str,
    apply_change: Callable[[Registration], Registration],
    *,
    detail: str = "",
    payload: dict[str, JSONValue] | None = None,
) -> RegistrationRecord:
    async with transaction():
        record = await repository.get_registration(registration_id, lock=True)
        if record is None:
            raise NotFoundError("registration_id", "no such registration")
        changed = apply_change(record.registration)
        await repository.update_registration(registration_id, changed, _now())
        await _record_step(actor, registration_id, changed, step, detail=detail, payload=payload)
        stored = await repository.get_registration(registration_id)
    if stored is None:
        raise RuntimeError("the registration vanished")
    return stored


async def accept(actor: Actor, registration_id: UUID) -> RegistrationRecord:
    """Staff accept the application (受理)."""
    return await _transition(actor, registration_id, "accepted", model.accept)


async def start_review(actor: Actor, registration_id: UUID) -> RegistrationRecord:
    """Staff begin the formal review (形式审查)."""
    return await _transition(actor, registration_id, "review_started", model.start_review)


async def reject(actor: Actor, registration_id: UUID, reasons: list[str]) -> RegistrationRecord:
    """Staff refuse the application (不予受理) or fail it at review, giving reasons."""
    return await _transition(
        actor,
        registration_id,
        "rejected",
        lambda registration: model.reject(registration, reasons=reasons),
        detail="; ".join(reasons),
        payload={"reasons": list(reasons)},
    )


async def open_notice(
    actor: Actor, registration_id: UUID, *, today: date, notice_period_days: int
) -> RegistrationRecord:
    """The review passed: the public notice (公示) opens today."""
    return await _transition(
        actor,
        registration_id,
        "notice_opened",
        lambda registration: model.open_notice(
            registration, on=today, notice_period_days=notice_period_days
        ),
        payload={"notice_starts_on": today.isoformat(), "notice_days": notice_period_days},
    )


async def file_objection(
    actor: Actor, registration_id: UUID, *, grounds: str, today: date
) -> RegistrationRecord:
    """Any authenticated party objects (异议) during the notice."""
    async with transaction():
        record = await repository.get_registration(registration_id, lock=True)
        if record is None:
            raise NotFoundError("registration_id", "no such registration")
        changed = model.file_objection(
            record.registration,
            objector=str(actor.organisation_id),
            grounds=grounds,
            on=today,
        )
        objection = changed.objections[-1]
        await repository.save_objection(registration_id, objection, actor.organisation_id)
        await repository.update_registration(registration_id, changed, _now())
        await _record_step(
            actor,
            registration_id,
            changed,
            "objection_filed",
            detail=f"#{objection.number}",
            payload={"objection_number": objection.number},
        )
        stored = await repository.get_registration(registration_id)
    if stored is None:
        raise RuntimeError("the registration vanished")
    return stored


async def resolve_objection(
    actor: Actor, registration_id: UUID, number: int, *, upheld: bool, resolution: str
) -> RegistrationRecord:
    """Staff uphold (the registration stops) or dismiss an objection."""
    async with transaction():
        record = await repository.get_registration(registration_id, lock=True)
        if record is None:
            raise NotFoundError("registration_id", "no such registration")
        resolve = model.uphold_objection if upheld else model.dismiss_objection
        changed = resolve(record.registration, number=number, resolution=resolution)
        await repository.save_objection(registration_id, changed.objections[number - 1], None)
        await repository.update_registration(registration_id, changed, _now())
        await _record_step(
            actor,
            registration_id,
            changed,
            "objection_upheld" if upheld else "objection_dismissed",
            detail=f"#{number}: {resolution}",
            payload={"objection_number": number},
        )
        stored = await repository.get_registration(registration_id)
    if stored is None:
        raise RuntimeError("the registration vanished")
    return stored


async def assign_code(
    actor: Actor, registration_id: UUID, *, today: date, issuer: str
) -> RegistrationRecord:
    """The notice is over with no objection standing: assign the code (赋码).

    A first registration takes the next serial of (issuer, kind, year) from the locked
    counter; a change or correction moves the registry's record for its code to the new data;
    a cancellation cancels the code, marks the registrations under it cancelled and delists
    the products that carry it or draw on it.
    """
    async with transaction():
        record = await repository.get_registration(registration_id, lock=True)
        if record is None:
            raise NotFoundError("registration_id", "no such registration")
        registration = record.registration
        if registration.kind is RegistrationKind.FIRST:
            # A refused assignment rolls the counter back with everything else, so committed
            # serials stay gap-free.
            kind = registration.data.subject_kind
            serial = await repository.next_serial(issuer, kind, today.year)
            code = UnifiedCode(issuer=issuer, kind=kind, year=today.year, serial=serial)
            registered = model.register(registration, on=today, new_code=code)
            await repository.update_registration(registration_id, registered, _now())
            await repository.insert_registry_entry(
                code, record.applicant_id, registration_id, registration.data, today
            )
            if record.product_id is not None:
                await repository.set_product_registration_code(record.product_id, code)
        else:
            target_code = registration.target_code
            if target_code is None:  # Registration guarantees it for these kinds
                raise DomainRuleError("target_code", "the registration refers to no code")
            _entry, current = await _current_of(target_code, lock=True)
            registered = model.register(registration, on=today, target=current)
            code = target_code
            await repository.update_registration(registration_id, registered, _now())
            if registration.kind is RegistrationKind.CANCELLATION:
                await _cancel_code(code, registered, today)
            else:
                await repository.amend_registry_entry(code, registration_id, registration.data)
        leaf = await _record_step(
            actor,
            registration_id,
            registered,
            "code_assigned",
            detail=str(code),
            payload={"code": str(code), "registered_on": today.isoformat()},
        )
        if registration.kind is RegistrationKind.FIRST:
            # A new code gets its one on-chain registry entry (ARCHITECTURE "On chain"); later
            # kinds keep the code, whose entry the chain already holds. Queued in this
            # transaction, so the code reaches the chain if and only if the assignment commits.
            await queue_code_registration(str(code), leaf.leaf_index, leaf.leaf_hash)
        stored = await repository.get_registration(registration_id)
    if stored is None:
        raise RuntimeError("the registration vanished")
    return stored


async def _cancel_code(code: UnifiedCode, cancellation: Registration, today: date) -> None:
    await repository.cancel_registry_entry(code, today)
    now = _now()
    for holder in await repository.list_registrations(code=code):
        if (
            holder.registration.state is RegistrationState.REGISTERED
            and holder.registration.kind is not RegistrationKind.CANCELLATION
            and holder.registration.code == code
        ):
            cancelled = model.mark_cancelled(holder.registration, cancellation=cancellation)
            await repository.update_registration(holder.id, cancelled, now)
    affected = await repository.products_to_delist_for_code(code)
    if affected:
        await repository.mark_delisted(affected, f"登记编码{code}已注销", "registry", now)


async def assign_due_codes(today: date, issuer: str) -> list[UUID]:
    """Assign codes to every registration whose notice is over with no open objection (a beat
    job); each in its own transaction, so one refusal does not hold back the others."""
    assigned: list[UUID] = []
    for registration_id in await repository.registrations_due_for_code(today):
        try:
            await assign_code(SYSTEM, registration_id, today=today, issuer=issuer)
        except ListingsError:
            # E.g. a change whose target was cancelled meanwhile: it stays in notice for staff
            # to reject; the others still get their codes.
            continue
        assigned.append(registration_id)
    return assigned


@dataclass(frozen=True)
class RegistryView:
    """What the public registry shows for a code: the entry, the registration now in force,
    and every registration filed under the code, each with its history; and the products
    offered under it that have been on the catalog (peers watch them to follow a delisting)."""

    entry: RegistryRecord
    current: RegistrationRecord
    registrations: list[RegistrationRecord]
    events: list[RegistrationEventRecord]
    products: list[ProductRecord]


async def lookup(code: UnifiedCode) -> RegistryView:
    entry = await repository.get_registry_entry(code)
    if entry is None:
        raise NotFoundError("code", f"{code} is not in the registry")
    registrations = await repository.list_registrations(code=code)
    first = await repository.get_registration(entry.first_registration_id)
    if first is not None and all(item.id != first.id for item in registrations):
        registrations.insert(0, first)
    by_id = {item.id: item for item in registrations}
    events = await repository.registration_events(list(by_id))
    return RegistryView(
        entry=entry,
        current=by_id[entry.current_registration_id],
        registrations=registrations,
        events=events,
        # Drafts are the operator's own business until they are listed.
        products=[
            record
            for record in await repository.products_under_code(code)
            if record.listed_at is not None
        ],
    )


def registration_ids(records: Iterable[RegistrationRecord]) -> list[UUID]:
    return [record.id for record in records]
