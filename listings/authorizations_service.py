"""Use cases of authorized operation (授权运营): grant, suspend, revoke, reinstate, expire.

Each use case is one transaction: the authorization row, its history event, the products it
delists or relists, and the ledger record commit together or not at all.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from uuid import UUID, uuid4

from ledger.log import append_record
from listings import authorization as model
from listings import repository
from listings.authorization import Authorization, AuthorizationState, Scope, Term
from listings.codes import UnifiedCode
from listings.context import SYSTEM, Actor, OperatorDirectory
from listings.domains import Grade, SubjectKind
from listings.errors import DomainRuleError, DomainValueError, NotFoundError
from listings.product import listing_blockers
from listings.registration import RegistrationState
from listings.repository import AuthorizationEventRecord, AuthorizationRecord
from listings.transactions import transaction


@dataclass(frozen=True)
class StateChange:
    record: AuthorizationRecord
    delisted_product_ids: list[UUID]
    relisted_product_ids: list[UUID]


def _now() -> datetime:
    return datetime.now(UTC)


async def grant(
    actor: Actor,
    *,
    operator_id: UUID,
    scope: Scope,
    resource_codes: Iterable[UnifiedCode],
    term: Term,
    conditions: str,
    today: date,
    directory: OperatorDirectory,
) -> AuthorizationRecord:
    """The regulator grants ``operator_id`` an authorization over registered resources."""
    codes = frozenset(resource_codes)
    if await directory.operator_name(operator_id) is None:
        raise DomainValueError("operator_id", f"{operator_id} is not an operator organisation")
    async with transaction():
        await repository.lock_operator(operator_id)
        entries = await repository.registry_entries(codes)
        for code in sorted(codes):
            entry = entries.get(code)
            if (
                entry is None
                or not entry.registered
                or entry.subject_kind is not SubjectKind.RESOURCE
            ):
                raise DomainRuleError(
                    "resource_codes", f"{code} is not a registered data resource code"
                )
        existing = [
            record.authorization for record in await repository.list_authorizations(operator_id)
        ]
        authorization = model.grant(
            operator_id=str(operator_id),
            scope=scope,
            resource_codes=codes,
            term=term,
            conditions=conditions,
            today=today,
            existing=existing,
        )
        authorization_id = uuid4()
        now = _now()
        await repository.insert_authorization(
            authorization_id, actor.organisation_id, authorization, now
        )
        leaf = await append_record(
            "authorization.granted",
            actor=actor.ledger_name,
            subject=f"authorization:{authorization_id}",
            payload={
                "authorization_id": str(authorization_id),
                "operator_id": str(operator_id),
                "scope_kind": scope.kind.value,
                "domains": sorted(domain.value for domain in scope.domains),
                "scenarios": sorted(scope.scenarios),
                "resource_codes": sorted(str(code) for code in codes),
                "term_start": term.start.isoformat(),
                "term_end": term.end.isoformat(),
            },
        )
        await repository.insert_authorization_event(
            AuthorizationEventRecord(
                authorization_id=authorization_id,
                action="grant",
                from_state=None,
                to_state=authorization.state.value,
                reason=authorization.conditions,
                actor=actor.ledger_name,
                leaf_index=leaf.leaf_index,
                occurred_at=now,
            )
        )
        record = await repository.get_authorization(authorization_id)
    if record is None:  # just inserted in the committed transaction
        raise RuntimeError("the granted authorization vanished")
    return record


async def get(actor: Actor, authorization_id: UUID) -> AuthorizationRecord:
    """One authorization: any for the regulator and staff, only its own for an operator."""
    record = await repository.get_authorization(authorization_id)
    if record is None or (actor.role == "operator" and record.operator_id != actor.organisation_id):
        raise NotFoundError("authorization_id", "no such authorization")
    return record


async def list_for(actor: Actor) -> list[AuthorizationRecord]:
    if actor.role == "operator":
        return await repository.list_authorizations(actor.organisation_id)
    return await repository.list_authorizations()


async def history(authorization_ids: list[UUID]) -> list[AuthorizationEventRecord]:
    return await repository.authorization_events(authorization_ids)


_ACTIONS = ("suspend", "revoke", "reinstate", "expire")


async def change_state(
    actor: Actor, authorization_id: UUID, *, action: str, reason: str, today: date
) -> StateChange:
    """Suspend, revoke, reinstate or expire an authorization.

    Suspension, revocation and expiry delist every product listed under it in the same
    transaction (the reason is shown on the product); reinstatement relists only the products
    this authorization had delisted and that nothing else blocks now (``listing_blockers``).
    """
    if action not in _ACTIONS:
        raise DomainValueError("action", f"unknown action {action!r}")
    async with transaction():
        record = await repository.get_authorization(authorization_id, lock=True)
        if record is None:
            raise NotFoundError("authorization_id", "no such authorization")
        before = record.authorization
        if action == "suspend":
            after = model.suspend(before, reason=reason)
        elif action == "revoke":
            after = model.revoke(before, reason=reason)
        elif action == "reinstate":
            after = model.reinstate(before, reason=reason, on=today)
        else:
            after = model.expire(before, reason=reason, on=today)
        now = _now()
        await repository.update_authorization_state(authorization_id, after, now)
        delisted: list[UUID] = []
        relisted: list[UUID] = []
        if after.state is AuthorizationState.ACTIVE:
            relisted = await _relist(authorization_id, after, today, now)
        else:
            delisted = await repository.products_to_delist_for_authorization(authorization_id)
            if delisted:
                shown = f"授权{after.state.label}:{after.state_reason}"
                await repository.mark_delisted(delisted, shown, "authorization", now)
        leaf = await append_record(
            f"authorization.{after.state.value}",
            actor=actor.ledger_name,
            subject=f"authorization:{authorization_id}",
            payload={
                "authorization_id": str(authorization_id),
                "action": action,
                "from_state": before.state.value,
                "to_state": after.state.value,
                "reason": after.state_reason,
                "delisted_product_ids": [str(product_id) for product_id in delisted],
                "relisted_product_ids": [str(product_id) for product_id in relisted],
            },
        )
        await repository.insert_authorization_event(
            AuthorizationEventRecord(
                authorization_id=authorization_id,
                action=action,
                from_state=before.state.value,
                to_state=after.state.value,
                reason=after.state_reason,
                actor=actor.ledger_name,
                leaf_index=leaf.leaf_index,
                occurred_at=now,
            )
        )
        updated = await repository.get_authorization(authorization_id)
    if updated is None:
        raise RuntimeError("the authorization vanished")
    return StateChange(updated, delisted, relisted)


async def _relist(
    authorization_id: UUID, authorization: Authorization, today: date, now: datetime
) -> list[UUID]:
    candidates = await repository.products_delisted_by_authorization(authorization_id)
    sources = {code for record in candidates for code in record.product.source_resource_codes}
    entries = await repository.registry_entries(sources)
    source_grades: dict[UnifiedCode, Grade] = {
        code: entry.grade for code, entry in entries.items() if entry.registered
    }
    own_codes = [record.registration_code for record in candidates if record.registration_code]
    own_entries = await repository.registry_entries(own_codes)
    relisted: list[UUID] = []
    for record in candidates:
        code = record.registration_code
        entry = None if code is None else own_entries.get(code)
        registration_state = (
            RegistrationState.REGISTERED
            if entry is not None and entry.registered
            else RegistrationState.CANCELLED
            if entry is not None
            else None
        )
        blockers = listing_blockers(
            record.product, authorization, registration_state, today, source_grades=source_grades
        )
        if not blockers:
            await repository.mark_listed(record.id, authorization_id, now)
            relisted.append(record.id)
    return relisted


async def expire_due(today: date) -> list[UUID]:
    """Expire every in-force authorization whose term ended before ``today`` (a beat job);
    each in its own transaction, so one failure does not hold back the others."""
    expired: list[UUID] = []
    for authorization_id in await repository.authorizations_due_for_expiry(today):
        record = await repository.get_authorization(authorization_id)
        if record is None:
            continue
        reason = f"运营期限已于{record.authorization.term.end.isoformat()}届满"
        await change_state(SYSTEM, authorization_id, action="expire", reason=reason, today=today)
        expired.append(authorization_id)
    return expired
