"""A listed product with an approved cap and ceiling, built through the real use cases, for the
orders tests (integration and end-to-end)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

from listings import authorizations_service, products_service, registrations_service
from listings.authorization import Scope, Term
from listings.codes import UnifiedCode
from listings.context import Actor
from listings.domains import (
    ChargingUnit,
    DataDomain,
    DeliveryForm,
    Grade,
    Purpose,
    ScopeKind,
    SubjectKind,
    UpdateCycle,
)
from listings.product import Price, Product, QualityIndicators
from listings.registration import RegistrationData, RegistrationKind
from market.accounts.model import Principal, Role
from market.operator_directory import AccountsOperatorDirectory
from market.settings import Settings
from market.trading import orders
from settlement import caps_service
from settlement.caps import ChargingUnit as CapUnit
from settlement.caps import FeeCap, PeriodGranularity, RevenueCeiling, RevenuePeriod
from settlement.caps import Purpose as CapPurpose
from settlement.money import Money
from settlement.payments.bank_transfer import BankTransferProvider
from tests.factories import Account, make_account

ZONE = ZoneInfo("Asia/Shanghai")
ISSUER = "DEMOEX"


def today() -> date:
    return datetime.now(ZONE).date()


def principal(account: Account) -> Principal:
    return Principal(user_id=account.user.id, organisation_id=account.organisation.id,
                     role=account.user.role, token_id=UUID(str(account.token_id)))


def config(**overrides: object) -> orders.OrderConfig:
    return orders.config_from_settings(Settings(**overrides))  # type: ignore[arg-type]


@dataclass(frozen=True)
class Market:
    regulator: Account
    staff: Account
    operator: Account
    buyer: Account
    other_buyer: Account
    product_id: UUID
    period: RevenuePeriod

    def request(self, **overrides: object) -> orders.OrderRequest:
        values: dict[str, object] = {
            "product_id": self.product_id, "purpose": "industry", "unit": "per_call",
            "quantity": 10, "term_start": today(), "term_end": today() + timedelta(days=30),
            "terms_accepted": True}
        values.update(overrides)
        return orders.OrderRequest(**values)  # type: ignore[arg-type]


async def _register(operator: Actor, staff: Actor, data: RegistrationData, *,
                    product_id: UUID | None) -> UnifiedCode:
    filed_on = today() - timedelta(days=7)
    record = await registrations_service.apply(
        operator, kind=RegistrationKind.FIRST, data=data, target_code=None, statement="",
        product_id=product_id, today=filed_on)
    await registrations_service.accept(staff, record.id)
    await registrations_service.start_review(staff, record.id)
    await registrations_service.open_notice(staff, record.id, today=filed_on,
                                            notice_period_days=7)
    registered = await registrations_service.assign_code(staff, record.id, today=today(),
                                                         issuer=ISSUER)
    assert registered.registration.code is not None
    return registered.registration.code


def _data(kind: SubjectKind, title: str, grade: Grade = Grade.GENERAL) -> RegistrationData:
    return RegistrationData(
        subject_kind=kind, holder="省气象局", title=title,
        description="全省自动气象站逐小时气温、降水、风速观测数据。",
        data_source="省气象局自动气象站网", domain=DataDomain.METEOROLOGY,
        update_cycle=UpdateCycle.DAILY,
        permitted_purposes=frozenset({Purpose.INDUSTRY, Purpose.PUBLIC_WELFARE}),
        security_measures="分级授权访问、数据脱敏、访问审计", grade=grade)


async def build_market(*, price_minor: int = 500, cap_minor: int = 600,
                       ceiling_minor: int = 1_000_000,
                       form: DeliveryForm = DeliveryForm.API,
                       grade: Grade = Grade.GENERAL) -> Market:
    """Operator, buyers, staff, regulator; a listed product priced ``price_minor`` per call for
    industry use (free for public welfare), its cap, and the operator's ceiling this month."""
    regulator, staff = await make_account(Role.REGULATOR), await make_account(Role.STAFF)
    operator = await make_account(Role.OPERATOR)
    buyer, other_buyer = await make_account(Role.BUYER), await make_account(Role.BUYER)
    operator_actor = Actor(operator.organisation.id, "operator")
    staff_actor = Actor(staff.organisation.id, "staff")
    directory = AccountsOperatorDirectory()
    resource = await _register(operator_actor, staff_actor,
                               _data(SubjectKind.RESOURCE, "全省自动气象站逐小时观测数据"),
                               product_id=None)
    await authorizations_service.grant(
        Actor(regulator.organisation.id, "regulator"), operator_id=operator.organisation.id,
        scope=Scope(kind=ScopeKind.DOMAIN, domains=frozenset({DataDomain.METEOROLOGY})),
        resource_codes=[resource], term=Term(start=today(), end=today() + timedelta(days=365)),
        conditions="原始数据不出域。", today=today(), directory=directory)
    product = await products_service.create(operator_actor, Product(
        operator_id=str(operator.organisation.id), title="城市逐小时气象服务数据",
        description="基于全省自动气象站观测数据加工的逐小时气温、降水和风速接口服务。",
        domain=DataDomain.METEOROLOGY, source_resource_codes=frozenset({resource}),
        delivery_form=form, update_cycle=UpdateCycle.DAILY, grade=grade,
        quality=QualityIndicators(95, 92, 90, 85, 100),
        permitted_purposes=frozenset({Purpose.INDUSTRY, Purpose.PUBLIC_WELFARE}),
        prices=(Price(Purpose.INDUSTRY, ChargingUnit.PER_CALL, price_minor),
                Price(Purpose.PUBLIC_WELFARE, ChargingUnit.PER_CALL, 0))),
        today=today(), directory=directory)
    await _register(operator_actor, staff_actor,
                    _data(SubjectKind.PRODUCT, "城市逐小时气象服务数据", grade),
                    product_id=product.id)
    await products_service.list_product(operator_actor, product.id, today=today())
    await caps_service.approve_fee_cap(
        FeeCap(product_id=str(product.id), purpose=CapPurpose.INDUSTRY_DEVELOPMENT,
               unit=CapUnit.PER_CALL, cap=Money(cap_minor, "CNY"),
               effective_from=today() - timedelta(days=1)),
        approved_by="regulator", approval_reference="发改价格〔2026〕1号")
    period = RevenuePeriod.containing(today(), PeriodGranularity.MONTH)
    await caps_service.approve_revenue_ceiling(
        RevenueCeiling(operator_id=str(operator.organisation.id), period=period,
                       operating_cost=Money(ceiling_minor, "CNY"),
                       permitted_profit=Money(0, "CNY"), tax=Money(0, "CNY")),
        approved_by="regulator", approval_reference="发改价格〔2026〕2号")
    return Market(regulator=regulator, staff=staff, operator=operator, buyer=buyer,
                  other_buyer=other_buyer, product_id=product.id, period=period)


def now() -> datetime:
    return datetime.now(UTC)


async def pay_and_deliver(order: orders.Order, cfg: orders.OrderConfig) -> orders.Order:
    """Staff confirm a bank transfer of ``order``'s whole price, which pays and delivers it."""
    bank = cfg.providers[orders.PaymentMethod.BANK_TRANSFER]
    assert isinstance(bank, BankTransferProvider)
    assert order.payment_reference is not None
    await bank.confirm_receipt(order.payment_reference, bank_transaction_ref=f"B-{order.id}",
                               amount=Money(order.gross_minor, order.currency),
                               received_on=today(), confirmed_by="staff")
    delivered = await orders.payment_confirmed(str(order.id), cfg, actor="staff", now=now())
    assert delivered is not None
    assert delivered.state is orders.OrderState.DELIVERED
    return delivered
