"""Demo data for the embedded default: organisations of every kind and a user in each.

Seeded once (the demo staff user marks it done); demo tokens are issued afresh at
each start, because a token's secret is shown only once and never stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from piccolo.engine import engine_finder

from market.accounts import service as accounts
from market.accounts.model import OrganisationKind, Role
from market.demo_listings import seed_listings
from market.settings import Settings


@dataclass(frozen=True)
class DemoAccount:
    organisation: str
    kind: OrganisationKind
    email: str
    display_name: str


DEMO_ACCOUNTS = (
    DemoAccount("示范公共数据交易所", OrganisationKind.EXCHANGE, "staff@exchange.example",
                "交易所运营人员"),
    DemoAccount("省数据局", OrganisationKind.AUTHORIZING_BODY, "regulator@bureau.example",
                "省数据局监管人员"),
    DemoAccount("省气象数据运营有限公司", OrganisationKind.OPERATOR, "ops@weather-operator.example",
                "气象数据运营专员"),
    DemoAccount("城市交通数据科技有限公司", OrganisationKind.OPERATOR,
                "ops@transport-operator.example", "交通数据运营专员"),
    DemoAccount("省大数据运营集团有限公司", OrganisationKind.OPERATOR,
                "ops@bigdata-operator.example", "综合数据运营专员"),
    DemoAccount("绿野农业保险股份有限公司", OrganisationKind.ENTERPRISE, "buyer@insurer.example",
                "数据采购经理"),
    DemoAccount("智行物流有限公司", OrganisationKind.ENTERPRISE, "buyer@logistics.example",
                "数据分析师"),
    DemoAccount("邻省数据交易中心", OrganisationKind.PEER_EXCHANGE, "peer@neighbour.example",
                "互认互通对接账号"),
)

DEMO_TOKEN_LIFETIME = timedelta(days=1)


@dataclass(frozen=True)
class DemoCredential:
    email: str
    role: Role
    organisation: str
    token: str


async def seed_demo_data() -> bool:
    """Create the demo organisations and users unless already there; True when it seeded."""
    engine = engine_finder()
    assert engine is not None
    async with engine.transaction():
        if await accounts.find_user_by_email(DEMO_ACCOUNTS[0].email) is not None:
            return False
        for account in DEMO_ACCOUNTS:
            organisation = await accounts.find_organisation_by_name(account.organisation)
            if organisation is None:
                organisation = await accounts.create_organisation(account.organisation,
                                                                  account.kind)
            await accounts.create_user(organisation.id, account.email, account.display_name)
        await _seed_listings()
    return True


async def _seed_listings() -> None:
    # Joins the seed's transaction: accounts and listings are seeded together or not at all.
    settings = Settings.from_env()
    ids = {}
    for account in DEMO_ACCOUNTS:
        organisation = await accounts.find_organisation_by_name(account.organisation)
        if organisation is not None:
            ids[account.organisation] = organisation.id
    regulator = next(a for a in DEMO_ACCOUNTS if a.kind is OrganisationKind.AUTHORIZING_BODY)
    staff = next(a for a in DEMO_ACCOUNTS if a.kind is OrganisationKind.EXCHANGE)
    await seed_listings(regulator_id=ids[regulator.organisation],
                        staff_id=ids[staff.organisation], operator_ids=ids,
                        today=datetime.now(settings.exchange_zone).date(),
                        issuer=settings.code_issuer)


async def issue_demo_tokens() -> list[DemoCredential]:
    credentials = []
    for account in DEMO_ACCOUNTS:
        user = await accounts.find_user_by_email(account.email)
        if user is None:
            continue
        issued = await accounts.issue_api_token(user.id, "demo session", DEMO_TOKEN_LIFETIME)
        credentials.append(DemoCredential(email=account.email, role=user.role,
                                          organisation=account.organisation,
                                          token=issued.secret))
    return credentials
