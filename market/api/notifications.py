"""An organisation's notifications over HTTP, and its optional signed webhook."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, delete, get, post, put
from litestar.di import Provide
from litestar.params import FromPath, FromQuery, JSONBody

from market.api.access import AUTHENTICATED, Caller, provide_principal
from market.trading import notifications as service

PRINCIPAL = {"principal": Provide(provide_principal, sync_to_thread=False)}
Limit = Annotated[int, msgspec.Meta(ge=1, le=500)]


class NotificationOut(msgspec.Struct):
    id: UUID
    kind: str
    subject: str
    payload: dict[str, Any]
    created_at: datetime
    read_at: datetime | None
    delivery: str
    attempts: int
    delivered_at: datetime | None


class WebhookIn(msgspec.Struct, forbid_unknown_fields=True):
    url: str


class WebhookOut(msgspec.Struct):
    url: str
    created_at: datetime
    updated_at: datetime
    signature_header: str = service.SIGNATURE_HEADER


class NewWebhookOut(msgspec.Struct):
    """The only time the signing secret is shown; registering again issues a new one."""

    secret: str
    webhook: WebhookOut


def _notification(record: service.NotificationRecord) -> NotificationOut:
    return NotificationOut(id=record.id, kind=record.kind, subject=record.subject,
                           payload=record.payload, created_at=record.created_at,
                           read_at=record.read_at, delivery=record.delivery,
                           attempts=record.attempts, delivered_at=record.delivered_at)


def _webhook(webhook: service.Webhook) -> WebhookOut:
    return WebhookOut(url=webhook.url, created_at=webhook.created_at,
                      updated_at=webhook.updated_at)


class NotificationController(Controller):
    path = "/notifications"
    tags = ["notifications"]
    dependencies = PRINCIPAL
    opt = AUTHENTICATED

    @get("/", summary="The caller organisation's notifications, newest first")
    async def list_notifications(self, principal: Caller, unread: FromQuery[bool] = False,
                                 limit: FromQuery[Limit] = 100) -> list[NotificationOut]:
        records = await service.list_for(principal.organisation_id, unread_only=unread,
                                         limit=limit)
        return [_notification(record) for record in records]

    @post("/{notification_id:uuid}/read", status_code=200, summary="Mark a notification read")
    async def mark_read(self, principal: Caller,
                        notification_id: FromPath[UUID]) -> NotificationOut:
        return _notification(await service.mark_read(principal.organisation_id, notification_id))

    @get("/webhook", summary="The organisation's webhook (never its secret)")
    async def get_webhook(self, principal: Caller) -> WebhookOut:
        return _webhook(await service.get_webhook(principal.organisation_id))

    @put("/webhook", summary="Register or replace the organisation's webhook (http or https); "
                             "a new signing secret is issued and shown once")
    async def put_webhook(self, principal: Caller, data: JSONBody[WebhookIn]) -> NewWebhookOut:
        created = await service.set_webhook(principal.organisation_id, data.url)
        return NewWebhookOut(secret=created.secret, webhook=_webhook(created.webhook))

    @delete("/webhook", status_code=204, summary="Remove the organisation's webhook")
    async def delete_webhook(self, principal: Caller) -> None:
        await service.delete_webhook(principal.organisation_id)
