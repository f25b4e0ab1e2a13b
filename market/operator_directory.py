"""The accounts package seen through the listings package's ``OperatorDirectory`` port: whether
an organisation is an operator, and organisation names for disclosures."""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

from market.accounts.model import OrganisationKind
from market.accounts.tables import Organisation


class AccountsOperatorDirectory:
    async def operator_name(self, organisation_id: UUID) -> str | None:
        row = await Organisation.select(Organisation.name, Organisation.kind).where(
            Organisation.id == organisation_id).first().run()
        if row is None or row["kind"] != OrganisationKind.OPERATOR.value:
            return None
        return str(row["name"])

    async def names(self, organisation_ids: Iterable[UUID]) -> dict[UUID, str]:
        wanted = list(set(organisation_ids))
        if not wanted:
            return {}
        rows = await Organisation.select(Organisation.id, Organisation.name).where(
            Organisation.id.is_in(wanted)).run()
        return {row["id"]: str(row["name"]) for row in rows}
