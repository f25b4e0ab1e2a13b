"""Demo data for the embedded default: organisations of every kind and a user in each.

Seeded once (the demo staff user marks it done); demo tokens are issued afresh at
each start, because a token's secret is shown only once and never stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

from piccolo.engine import engine_finder

from listings import repository as listings_repository
from listings.domains import ChargingUnit, DataDomain, DeliveryForm, Grade, Purpose
from listings.product import ProductState
from market.accounts import service as accounts
from market.accounts.model import OrganisationKind, Principal, Role
from market.demo_listings import seed_listings
from market.settings import Settings
from market.trading import clearances, demands
from market.trading.store import Visibility
from settlement import caps_service
from settlement.caps import ChargingUnit as CapUnit
from settlement.caps import FeeCap, PeriodGranularity, RevenueCeiling, RevenuePeriod
from settlement.caps import Purpose as CapPurpose
from settlement.errors import NoRevenueCeilingError
from settlement.money import Money


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
        await _seed_clearances()
        await _seed_demands()
        await _seed_order_caps()
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


@dataclass(frozen=True)
class DemoDemand:
    buyer_email: str
    title: str
    description: str
    domains: tuple[DataDomain, ...]
    forms: tuple[DeliveryForm, ...]
    unit_budgets: tuple[tuple[ChargingUnit, int], ...]
    visibility: Visibility
    clearance: Grade = Grade.GENERAL


DEMO_DEMANDS = (
    DemoDemand("buyer@insurer.example", "采购县级农业气象灾害预警数据",
               "农业保险承保与定损需要按县级行政区逐日发布的干旱、霜冻和暴雨洪涝灾害风险预警。",
               (DataDomain.METEOROLOGY,), (DeliveryForm.REPORT, DeliveryForm.FILE),
               ((ChargingUnit.PER_PERIOD, 1_500_000),), Visibility.PUBLIC_POOL),
    DemoDemand("buyer@insurer.example", "健康险核保风险评分服务",
               "商业健康保险核保需要基于诊疗统计的风险评分,可在隐私计算环境中调用,原始数据不出域。",
               (DataDomain.HEALTH,), (DeliveryForm.SANDBOX, DeliveryForm.API),
               ((ChargingUnit.PER_CALL, 1_000),), Visibility.EXCHANGE, Grade.IMPORTANT),
    DemoDemand("buyer@logistics.example", "城市道路拥堵和货车通行数据",
               "物流配送路径规划需要主要道路实时拥堵指数,以及城市货车通行时段和限行影响分析。",
               (DataDomain.TRANSPORT,), (DeliveryForm.API, DeliveryForm.REPORT),
               ((ChargingUnit.PER_CALL, 50), (ChargingUnit.PER_PRODUCT, 400_000)),
               Visibility.PUBLIC_POOL),
    DemoDemand("buyer@logistics.example", "逐小时降水气象数据接口",
               "车辆调度需要城市逐小时降水、气温和风速实况数据接口,用于恶劣天气下的配送安排。",
               (DataDomain.METEOROLOGY,), (DeliveryForm.API,),
               ((ChargingUnit.PER_CALL, 80),), Visibility.EXCHANGE),
)


# Buyers cleared for important data by exchange staff, with the evidence they showed.
DEMO_CLEARANCES = (("buyer@insurer.example", "数据安全能力评估报告(示范)2026-001号"),)


def _acting(user: accounts.UserRecord, role: Role) -> Principal:
    # The seed acts for demo users without a session: no token is involved.
    return Principal(user_id=user.id, organisation_id=user.organisation_id, role=role,
                     token_id=UUID(int=0))


async def _seed_clearances() -> None:
    today = datetime.now(Settings.from_env().exchange_zone).date()
    staff = await accounts.find_user_by_email("staff@exchange.example")
    assert staff is not None
    for email, evidence in DEMO_CLEARANCES:
        buyer = await accounts.find_user_by_email(email)
        assert buyer is not None
        await clearances.grant(_acting(staff, Role.STAFF), buyer.organisation_id,
                               Grade.IMPORTANT.value, valid_from=today,
                               valid_to=today + timedelta(days=365), evidence=evidence,
                               today=today, now=datetime.now(UTC))


async def _seed_demands() -> None:
    # Joins the seed's transaction, after the listings, so the demands have products to match.
    today = datetime.now(Settings.from_env().exchange_zone).date()
    for item in DEMO_DEMANDS:
        user = await accounts.find_user_by_email(item.buyer_email)
        if user is None:
            continue
        await demands.post(_acting(user, Role.BUYER), demands.NewDemand(
            title=item.title, description=item.description, domains=item.domains,
            purpose=Purpose.INDUSTRY, budget_minor_per_unit=None,
            unit_budgets_minor=dict(item.unit_budgets), delivery_forms=item.forms,
            grade_clearance=item.clearance, deadline=today + timedelta(days=60),
            visibility=item.visibility), today=today)



DEMO_OPERATOR_CEILING_MINOR = 1_000_000_000  # ¥10,000,000 a year per demo operator


async def _seed_order_caps() -> None:
    """Caps and ceilings so that demo orders can be placed (issue 5): each paid list price's
    upper-limit fee is the price itself, each operator's ceiling this year ¥10,000,000.
    Skips what is already approved, so it is safe to run again."""
    settings = Settings.from_env()
    today = datetime.now(settings.exchange_zone).date()
    year = RevenuePeriod.containing(today, PeriodGranularity.YEAR)
    operators: set[UUID] = set()
    for record in await listings_repository.list_products(states=[ProductState.LISTED]):
        operators.add(record.operator_id)
        approved = {(stored.cap.purpose, stored.cap.unit)
                    for stored in await caps_service.fee_cap_history(str(record.id))}
        for price in record.product.prices:
            if price.purpose is not Purpose.INDUSTRY:
                continue  # free purposes have no cap: they are charged nothing
            key = (CapPurpose.INDUSTRY_DEVELOPMENT, CapUnit(price.unit.value))
            if key in approved:
                continue
            await caps_service.approve_fee_cap(
                FeeCap(product_id=str(record.id), purpose=key[0], unit=key[1],
                       cap=Money(price.price_minor, price.currency),
                       effective_from=today.replace(month=1, day=1)),
                approved_by="demo", approval_reference="示范上限收费标准")
    for operator_id in sorted(operators):
        try:
            await caps_service.ceiling_status(str(operator_id), year)
        except NoRevenueCeilingError:
            await caps_service.approve_revenue_ceiling(
                RevenueCeiling(operator_id=str(operator_id), period=year,
                               operating_cost=Money(DEMO_OPERATOR_CEILING_MINOR, settings.currency),
                               permitted_profit=Money(0, settings.currency),
                               tax=Money(0, settings.currency)),
                approved_by="demo", approval_reference="示范最高准许收入")


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
