"""The public registry: look a unified code up (互认互通: peers and the public verify codes)."""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID

import msgspec
from litestar import Controller, get
from litestar.params import FromPath

from listings import registrations_service as service
from listings.codes import parse_code
from market.api.access import public
from market.api.listings_common import Labelled, labelled
from market.api.products import ProductOut, product_out
from market.api.registrations import RegistrationOut, registration_out


class RegistryEventOut(msgspec.Struct):
    registration_id: UUID
    step: str
    state: str
    detail: str
    actor: str
    leaf_index: int
    occurred_at: datetime


class RegistryEntryOut(msgspec.Struct):
    code: str
    subject_kind: Labelled
    state: str
    assigned_on: date
    cancelled_on: date | None
    current: RegistrationOut
    registrations: list[RegistrationOut]
    history: list[RegistryEventOut]
    products: list[ProductOut]


class RegistryController(Controller):
    path = "/registry"
    tags = ["registry"]
    opt = public()

    @get("/{code:str}", summary="A registration code: its registration, state and full history; "
                                "a malformed or mistyped code is refused by its check character")
    async def lookup(self, code: FromPath[str]) -> RegistryEntryOut:
        view = await service.lookup(parse_code(code, "code"))
        return RegistryEntryOut(
            code=str(view.entry.code), subject_kind=labelled(view.entry.subject_kind),
            state="registered" if view.entry.registered else "cancelled",
            assigned_on=view.entry.assigned_on, cancelled_on=view.entry.cancelled_on,
            current=registration_out(view.current),
            registrations=[registration_out(record) for record in view.registrations],
            history=[RegistryEventOut(registration_id=event.registration_id, step=event.step,
                                      state=event.state, detail=event.detail, actor=event.actor,
                                      leaf_index=event.leaf_index, occurred_at=event.occurred_at)
                     for event in view.events],
            products=[product_out(record) for record in view.products])
