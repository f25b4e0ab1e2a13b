"""Authorized operation (授权运营) over HTTP: the regulator grants and changes authorizations;
staff see all of them; an operator sees its own."""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID

import msgspec
from litestar import Controller, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody

from listings import authorizations_service as service
from listings.authorization import Scope, Term
from listings.domains import DataDomain, ScopeKind
from listings.repository import AuthorizationEventRecord, AuthorizationRecord
from market.accounts.model import Principal, Role
from market.api.access import Caller, provide_principal, roles
from market.api.listings_common import (
    DIRECTORY,
    Labelled,
    ListingsConfig,
    actor_of,
    codes,
    labelled,
    vocabulary,
)


class ScopeIn(msgspec.Struct, forbid_unknown_fields=True):
    kind: str
    domains: list[str] = msgspec.field(default_factory=list)
    scenarios: list[str] = msgspec.field(default_factory=list)


class TermIn(msgspec.Struct, forbid_unknown_fields=True):
    start: date
    end: date


class AuthorizationCreate(msgspec.Struct, forbid_unknown_fields=True):
    operator_id: UUID
    scope: ScopeIn
    resource_codes: list[str]
    term: TermIn
    conditions: str


class StateChangeIn(msgspec.Struct, forbid_unknown_fields=True):
    reason: str


class ScopeOut(msgspec.Struct):
    kind: Labelled
    domains: list[Labelled]
    scenarios: list[str]


class TermOut(msgspec.Struct):
    start: date
    end: date


class AuthorizationEventOut(msgspec.Struct):
    action: str
    from_state: str | None
    to_state: str
    reason: str
    actor: str
    leaf_index: int
    occurred_at: datetime


class AuthorizationOut(msgspec.Struct):
    id: UUID
    operator_id: UUID
    granted_by: UUID
    scope: ScopeOut
    resource_codes: list[str]
    term: TermOut
    conditions: str
    state: Labelled
    state_reason: str
    granted_at: datetime
    updated_at: datetime
    history: list[AuthorizationEventOut]


class StateChangeOut(msgspec.Struct):
    authorization: AuthorizationOut
    delisted_product_ids: list[UUID]
    relisted_product_ids: list[UUID]


def _out(record: AuthorizationRecord, events: list[AuthorizationEventRecord]) -> AuthorizationOut:
    authorization = record.authorization
    return AuthorizationOut(
        id=record.id, operator_id=record.operator_id, granted_by=record.granted_by,
        scope=ScopeOut(kind=labelled(authorization.scope.kind),
                       domains=[labelled(domain) for domain in sorted(authorization.scope.domains)],
                       scenarios=sorted(authorization.scope.scenarios)),
        resource_codes=sorted(str(code) for code in authorization.resource_codes),
        term=TermOut(start=authorization.term.start, end=authorization.term.end),
        conditions=authorization.conditions, state=labelled(authorization.state),
        state_reason=authorization.state_reason, granted_at=record.granted_at,
        updated_at=record.updated_at,
        history=[AuthorizationEventOut(action=event.action, from_state=event.from_state,
                                       to_state=event.to_state, reason=event.reason,
                                       actor=event.actor, leaf_index=event.leaf_index,
                                       occurred_at=event.occurred_at)
                 for event in events if event.authorization_id == record.id])


async def _with_history(records: list[AuthorizationRecord]) -> list[AuthorizationOut]:
    events = await service.history([record.id for record in records])
    return [_out(record, events) for record in records]


class AuthorizationController(Controller):
    path = "/authorizations"
    tags = ["authorizations"]
    dependencies = {"principal": Provide(provide_principal, sync_to_thread=False)}
    opt = roles(Role.REGULATOR, Role.STAFF, Role.OPERATOR)

    @post("/", opt=roles(Role.REGULATOR), summary="Grant an operator an authorization (regulator)")
    async def grant(self, principal: Caller, data: JSONBody[AuthorizationCreate],
                    listings_config: NamedDependency[ListingsConfig]) -> AuthorizationOut:
        kind = vocabulary(ScopeKind, data.scope.kind, "scope.kind")
        domains = frozenset(vocabulary(DataDomain, value, f"scope.domains[{index}]")
                            for index, value in enumerate(data.scope.domains))
        scope = Scope(kind=kind, domains=domains, scenarios=frozenset(data.scope.scenarios))
        term = Term(start=data.term.start, end=data.term.end)
        record = await service.grant(
            actor_of(principal), operator_id=data.operator_id, scope=scope,
            resource_codes=codes(data.resource_codes, "resource_codes"), term=term,
            conditions=data.conditions, today=listings_config.today(), directory=DIRECTORY)
        return (await _with_history([record]))[0]

    @get("/", summary="Authorizations: all for the regulator and staff, its own for an operator")
    async def list_authorizations(self, principal: Caller) -> list[AuthorizationOut]:
        return await _with_history(await service.list_for(actor_of(principal)))

    @get("/{authorization_id:uuid}", summary="One authorization with its history")
    async def get_authorization(self, principal: Caller,
                                authorization_id: FromPath[UUID]) -> AuthorizationOut:
        record = await service.get(actor_of(principal), authorization_id)
        return (await _with_history([record]))[0]

    async def _change(self, principal: Principal, authorization_id: UUID, action: str,
                      reason: str, config: ListingsConfig) -> StateChangeOut:
        change = await service.change_state(actor_of(principal), authorization_id, action=action,
                                            reason=reason, today=config.today())
        return StateChangeOut(authorization=(await _with_history([change.record]))[0],
                              delisted_product_ids=change.delisted_product_ids,
                              relisted_product_ids=change.relisted_product_ids)

    @post("/{authorization_id:uuid}/suspend", opt=roles(Role.REGULATOR), status_code=200,
          summary="Suspend (暂停): the operator's products under it are delisted at once")
    async def suspend(self, principal: Caller, authorization_id: FromPath[UUID],
                      data: JSONBody[StateChangeIn],
                      listings_config: NamedDependency[ListingsConfig]) -> StateChangeOut:
        return await self._change(principal, authorization_id, "suspend", data.reason,
                                  listings_config)

    @post("/{authorization_id:uuid}/revoke", opt=roles(Role.REGULATOR), status_code=200,
          summary="Revoke (撤销), final: the operator's products under it are delisted at once")
    async def revoke(self, principal: Caller, authorization_id: FromPath[UUID],
                     data: JSONBody[StateChangeIn],
                     listings_config: NamedDependency[ListingsConfig]) -> StateChangeOut:
        return await self._change(principal, authorization_id, "revoke", data.reason,
                                  listings_config)

    @post("/{authorization_id:uuid}/reinstate", opt=roles(Role.REGULATOR), status_code=200,
          summary="Reinstate a suspended authorization; relists only what is still valid")
    async def reinstate(self, principal: Caller, authorization_id: FromPath[UUID],
                        data: JSONBody[StateChangeIn],
                        listings_config: NamedDependency[ListingsConfig]) -> StateChangeOut:
        return await self._change(principal, authorization_id, "reinstate", data.reason,
                                  listings_config)
