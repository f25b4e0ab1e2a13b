"""What the listings controllers share: the settings they need, the caller as a listings
``Actor``, the operator directory, and small wire types and converters."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import TypeVar
from zoneinfo import ZoneInfo

import msgspec

from listings.codes import UnifiedCode, parse_code
from listings.context import Actor
from listings.domains import Vocabulary
from listings.errors import ListingsError
from market.accounts.model import Principal
from market.operator_directory import AccountsOperatorDirectory
from market.settings import Settings

V = TypeVar("V", bound=Vocabulary)
T = TypeVar("T")


@dataclass(frozen=True)
class ListingsConfig:
    issuer: str
    notice_days: int
    zone: ZoneInfo

    @classmethod
    def from_settings(cls, settings: Settings) -> ListingsConfig:
        return cls(issuer=settings.code_issuer, notice_days=settings.notice_days,
                   zone=settings.exchange_zone)

    def today(self) -> date:
        # Terms and notice periods are calendar days in the exchange's own zone.
        return datetime.now(self.zone).date()


DIRECTORY = AccountsOperatorDirectory()


def actor_of(principal: Principal) -> Actor:
    return Actor(organisation_id=principal.organisation_id, role=principal.role.value)


class Labelled(msgspec.Struct):
    """A vocabulary value with its Chinese label."""

    value: str
    label: str


def labelled(member: Vocabulary) -> Labelled:
    return Labelled(value=member.value, label=member.label)


def vocabulary(kind: type[V], value: object, field: str) -> V:
    return kind.from_wire(value, field)


def codes(values: list[str], field: str) -> list[UnifiedCode]:
    return [parse_code(value, f"{field}[{index}]") for index, value in enumerate(values)]


def within(prefix: str, build: Callable[[], T]) -> T:
    """Run ``build``, putting ``prefix`` in front of the field a listings error names, so that a
    value object's own field (``price_minor``) is reported where it sits
    (``prices[1].price_minor``)."""
    try:
        return build()
    except ListingsError as error:
        error.field = f"{prefix}.{error.field}"
        raise
