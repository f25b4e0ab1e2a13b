"""Registration (登记) over HTTP: operators apply; staff accept, review, reject, open the public
notice, resolve objections and assign codes; anyone authenticated may object during notice."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated
from uuid import UUID

import msgspec
from litestar import Controller, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody, QueryParameter

from listings import registrations_service as service
from listings.codes import parse_code
from listings.domains import DataDomain, Grade, Purpose, SubjectKind, UpdateCycle
from listings.registration import RegistrationData, RegistrationKind, RegistrationState
from listings.repository import RegistrationRecord
from market.accounts.model import Role
from market.api.access import AUTHENTICATED, Caller, provide_principal, public, roles
from market.api.listings_common import Labelled, ListingsConfig, actor_of, labelled, vocabulary


class RegistrationDataIn(msgspec.Struct, forbid_unknown_fields=True):
    subject_kind: str
    holder: str
    title: str
    description: str
    data_source: str
    domain: str
    update_cycle: str
    permitted_purposes: list[str]
    security_measures: str
    grade: str


class RegistrationCreate(msgspec.Struct, forbid_unknown_fields=True):
    kind: str = "first"
    data: RegistrationDataIn | None = None
    target_code: str | None = None
    statement: str = ""
    product_id: UUID | None = None


class RejectIn(msgspec.Struct, forbid_unknown_fields=True):
    reasons: list[str]


class ObjectionIn(msgspec.Struct, forbid_unknown_fields=True):
    grounds: str


class ResolutionIn(msgspec.Struct, forbid_unknown_fields=True):
    resolution: str


class RegistrationDataOut(msgspec.Struct):
    subject_kind: Labelled
    holder: str
    title: str
    description: str
    data_source: str
    domain: Labelled
    update_cycle: Labelled
    permitted_purposes: list[Labelled]
    security_measures: str
    grade: Labelled


class NoticeOut(msgspec.Struct):
    starts_on: date
    days: int
    ends_on: date


class ObjectionOut(msgspec.Struct):
    number: int
    objector_organisation_id: str
    grounds: str
    filed_on: date
    state: Labelled
    resolution: str


class RegistrationOut(msgspec.Struct):
    id: UUID
    applicant_id: UUID
    product_id: UUID | None
    kind: Labelled
    state: Labelled
    data: RegistrationDataOut
    target_code: str | None
    statement: str
    notice: NoticeOut | None
    objections: list[ObjectionOut]
    rejection_reasons: list[str]
    code: str | None
    registered_on: date | None
    applied_on: date
    created_at: datetime
    updated_at: datetime


def registration_out(record: RegistrationRecord) -> RegistrationOut:
    registration = record.registration
    data = registration.data
    notice = registration.notice
    return RegistrationOut(
        id=record.id, applicant_id=record.applicant_id, product_id=record.product_id,
        kind=labelled(registration.kind), state=labelled(registration.state),
        data=RegistrationDataOut(
            subject_kind=labelled(data.subject_kind), holder=data.holder, title=data.title,
            description=data.description, data_source=data.data_source,
            domain=labelled(data.domain), update_cycle=labelled(data.update_cycle),
            permitted_purposes=[labelled(purpose) for purpose in sorted(data.permitted_purposes)],
            security_measures=data.security_measures, grade=labelled(data.grade)),
        target_code=None if registration.target_code is None else str(registration.target_code),
        statement=registration.statement,
        notice=None if notice is None else NoticeOut(starts_on=notice.starts_on, days=notice.days,
                                                     ends_on=notice.ends_on),
        objections=[ObjectionOut(number=objection.number,
                                 objector_organisation_id=objection.objector,
                                 grounds=objection.grounds, filed_on=objection.filed_on,
                                 state=labelled(objection.state),
                                 resolution=objection.resolution)
                    for objection in registration.objections],
        rejection_reasons=list(registration.rejection_reasons),
        code=None if registration.code is None else str(registration.code),
        registered_on=registration.registered_on, applied_on=registration.applied_on,
        created_at=record.created_at, updated_at=record.updated_at)


def _data(data: RegistrationDataIn) -> RegistrationData:
    return RegistrationData(
        subject_kind=vocabulary(SubjectKind, data.subject_kind, "data.subject_kind"),
        holder=data.holder, title=data.title, description=data.description,
        data_source=data.data_source,
        domain=vocabulary(DataDomain, data.domain, "data.domain"),
        update_cycle=vocabulary(UpdateCycle, data.update_cycle, "data.update_cycle"),
        permitted_purposes=frozenset(
            vocabulary(Purpose, value, f"data.permitted_purposes[{index}]")
            for index, value in enumerate(data.permitted_purposes)),
        security_measures=data.security_measures,
        grade=vocabulary(Grade, data.grade, "data.grade"))


STAFF_ONLY = roles(Role.STAFF)


class RegistrationController(Controller):
    path = "/registrations"
    tags = ["registrations"]
    dependencies = {"principal": Provide(provide_principal, sync_to_thread=False)}
    opt = roles(Role.OPERATOR, Role.STAFF, Role.REGULATOR)

    @post("/", opt=roles(Role.OPERATOR),
          summary="Apply to register a resource, product or service (first, change, correction, "
                  "cancellation)")
    async def apply(self, principal: Caller, data: JSONBody[RegistrationCreate],
                    listings_config: NamedDependency[ListingsConfig]) -> RegistrationOut:
        kind = vocabulary(RegistrationKind, data.kind, "kind")
        record = await service.apply(
            actor_of(principal), kind=kind,
            data=None if data.data is None else _data(data.data),
            target_code=None if data.target_code is None
            else parse_code(data.target_code, "target_code"),
            statement=data.statement, product_id=data.product_id,
            today=listings_config.today())
        return registration_out(record)

    @get("/", summary="Registrations: its own for an operator, all for staff and the regulator")
    async def list_registrations(
        self, principal: Caller,
        registration_state: Annotated[str | None, QueryParameter(name="state")] = None,
    ) -> list[RegistrationOut]:
        states = (None if registration_state is None
                  else [vocabulary(RegistrationState, registration_state, "state")])
        return [registration_out(record)
                for record in await service.list_for(actor_of(principal), states=states)]

    @get("/notices", opt=public(),
         summary="Registrations under public notice (公示), open to objections")
    async def notices(self) -> list[RegistrationOut]:
        return [registration_out(record) for record in await service.in_notice()]

    @get("/{registration_id:uuid}", summary="One registration")
    async def get_registration(self, principal: Caller,
                               registration_id: FromPath[UUID]) -> RegistrationOut:
        return registration_out(await service.get(actor_of(principal), registration_id))

    @post("/{registration_id:uuid}/accept", opt=STAFF_ONLY, status_code=200,
          summary="Accept the application (受理, staff)")
    async def accept(self, principal: Caller, registration_id: FromPath[UUID]) -> RegistrationOut:
        return registration_out(await service.accept(actor_of(principal), registration_id))

    @post("/{registration_id:uuid}/start-review", opt=STAFF_ONLY, status_code=200,
          summary="Begin the formal review (形式审查, staff)")
    async def start_review(self, principal: Caller,
                           registration_id: FromPath[UUID]) -> RegistrationOut:
        return registration_out(await service.start_review(actor_of(principal), registration_id))

    @post("/{registration_id:uuid}/reject", opt=STAFF_ONLY, status_code=200,
          summary="Reject at acceptance or review, with reasons (staff)")
    async def reject(self, principal: Caller, registration_id: FromPath[UUID],
                     data: JSONBody[RejectIn]) -> RegistrationOut:
        return registration_out(await service.reject(actor_of(principal), registration_id,
                                                     data.reasons))

    @post("/{registration_id:uuid}/open-notice", opt=STAFF_ONLY, status_code=200,
          summary="The review passed: open the public notice for the configured number of days")
    async def open_notice(self, principal: Caller, registration_id: FromPath[UUID],
                          listings_config: NamedDependency[ListingsConfig]) -> RegistrationOut:
        return registration_out(await service.open_notice(
            actor_of(principal), registration_id, today=listings_config.today(),
            notice_period_days=listings_config.notice_days))

    @post("/{registration_id:uuid}/objections", opt=AUTHENTICATED, status_code=201,
          summary="Object (异议) to a registration under notice (anyone authenticated)")
    async def file_objection(self, principal: Caller, registration_id: FromPath[UUID],
                             data: JSONBody[ObjectionIn],
                             listings_config: NamedDependency[ListingsConfig],
                             ) -> RegistrationOut:
        return registration_out(await service.file_objection(
            actor_of(principal), registration_id, grounds=data.grounds,
            today=listings_config.today()))

    @post("/{registration_id:uuid}/objections/{number:int}/uphold", opt=STAFF_ONLY,
          status_code=200, summary="Uphold an objection: the registration stops (staff)")
    async def uphold(self, principal: Caller, registration_id: FromPath[UUID],
                     number: FromPath[int],
                     data: JSONBody[ResolutionIn]) -> RegistrationOut:
        return registration_out(await service.resolve_objection(
            actor_of(principal), registration_id, number, upheld=True,
            resolution=data.resolution))

    @post("/{registration_id:uuid}/objections/{number:int}/dismiss", opt=STAFF_ONLY,
          status_code=200, summary="Dismiss an objection (staff)")
    async def dismiss(self, principal: Caller, registration_id: FromPath[UUID],
                      number: FromPath[int],
                      data: JSONBody[ResolutionIn]) -> RegistrationOut:
        return registration_out(await service.resolve_objection(
            actor_of(principal), registration_id, number, upheld=False,
            resolution=data.resolution))

    @post("/{registration_id:uuid}/assign-code", opt=STAFF_ONLY, status_code=200,
          summary="Assign the code (赋码) once the notice is over with no objection standing")
    async def assign_code(self, principal: Caller, registration_id: FromPath[UUID],
                          listings_config: NamedDependency[ListingsConfig]) -> RegistrationOut:
        return registration_out(await service.assign_code(
            actor_of(principal), registration_id, today=listings_config.today(),
            issuer=listings_config.issuer))
