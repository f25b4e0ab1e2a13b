"""Factories that build valid accounts through the real use cases."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from market.accounts import service as accounts
from market.accounts.model import ROLE_OF_KIND, Role

KIND_OF_ROLE = {role: kind for kind, role in ROLE_OF_KIND.items()}


@dataclass(frozen=True)
class Account:
    organisation: accounts.OrganisationRecord
    user: accounts.UserRecord
    token: str
    token_id: object

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def make_account(role: Role, *, organisation: accounts.OrganisationRecord | None = None,
                       lifetime: timedelta = timedelta(days=1)) -> Account:
    suffix = secrets.token_hex(4)
    if organisation is None:
        organisation = await accounts.create_organisation(f"{role.value} 机构 {suffix}",
                                                          KIND_OF_ROLE[role])
    user = await accounts.create_user(organisation.id, f"{role.value}-{suffix}@example.org",
                                      f"{role.value} 用户 {suffix}")
    issued = await accounts.issue_api_token(user.id, "test", lifetime)
    return Account(organisation=organisation, user=user, token=issued.secret,
                   token_id=issued.record.id)
