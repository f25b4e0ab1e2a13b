"""Who performs a use case, and what the listings use cases need to know about organisations.

The listings package does not import the exchange's accounts (``market`` depends on ``listings``,
never the reverse), so the caller hands in an ``Actor`` and an ``OperatorDirectory`` adapter.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID


@dataclass(frozen=True)
class Actor:
    """The organisation acting and the role it acts in (``system`` for scheduled jobs)."""

    organisation_id: UUID
    role: str

    @property
    def ledger_name(self) -> str:
        # Ledger records name organisations, never people (minimal personal data on the log).
        return f"{self.role}:{self.organisation_id}"


SYSTEM = Actor(organisation_id=UUID(int=0), role="system")


class OperatorDirectory(Protocol):
    """Operator organisations as the accounts package knows them."""

    async def operator_name(self, organisation_id: UUID) -> str | None:
        """The name of the operator organisation, or ``None`` if there is no such operator."""
        ...

    async def names(self, organisation_ids: Iterable[UUID]) -> dict[UUID, str]:
        """Names of the given organisations (of any kind) that exist."""
        ...
