"""The listings use cases on a real database: the expiry and code-assignment jobs, and serials
taken under the counter's row lock by concurrent assignments."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import date, timedelta
from uuid import UUID, uuid4

from ledger.tables import LedgerLeaf
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
from listings.tables import ProductRow

ISSUER = "TESTEX"
PAST = date(2020, 3, 2)
STAFF = Actor(uuid4(), "staff")


class Directory:
    def __init__(self, operators: dict[UUID, str]) -> None:
        self._operators = operators

    async def operator_name(self, organisation_id: UUID) -> str | None:
        return self._operators.get(organisation_id)

    async def names(self, organisation_ids: Iterable[UUID]) -> dict[UUID, str]:
        return {i: self._operators[i] for i in organisation_ids if i in self._operators}


def data(title: str, kind: SubjectKind = SubjectKind.RESOURCE) -> RegistrationData:
    return RegistrationData(
        subject_kind=kind,
        holder="省交通运输厅",
        title=title,
        description="全省高速公路收费站车流量统计数据。",
        data_source="省交通运输厅收费系统",
        domain=DataDomain.TRANSPORT,
        update_cycle=UpdateCycle.DAILY,
        permitted_purposes=frozenset({Purpose.INDUSTRY}),
        security_measures="脱敏、审计",
        grade=Grade.GENERAL,
    )


async def in_notice(operator: Actor, title: str, on: date, **kwargs: object) -> UUID:
    record = await registrations_service.apply(
        operator,
        kind=RegistrationKind.FIRST,
        data=data(title, **kwargs),  # type: ignore[arg-type]
        target_code=None,
        statement="",
        product_id=None,
        today=on,
    )
    await registrations_service.accept(STAFF, record.id)
    await registrations_service.start_review(STAFF, record.id)
    await registrations_service.open_notice(STAFF, record.id, today=on, notice_period_days=7)
    return record.id


async def test_due_codes_are_assigned_by_the_job(db: str) -> None:
    operator = Actor(uuid4(), "operator")
    due = await in_notice(operator, "高速车流量", PAST)
    running = await in_notice(operator, "港口吞吐量", PAST + timedelta(days=5))
    assigned = await registrations_service.assign_due_codes(PAST + timedelta(days=7), ISSUER)
    assert assigned == [due]
    record = await registrations_service.get(STAFF, due)
    assert record.registration.code == UnifiedCode(ISSUER, SubjectKind.RESOURCE, 2020, 1)
    still = await registrations_service.get(STAFF, running)
    assert still.registration.code is None


async def test_concurrent_assignments_get_distinct_serials(db: str) -> None:
    operator = Actor(uuid4(), "operator")
    ids = [await in_notice(operator, f"资源{n}", PAST) for n in range(6)]
    results = await asyncio.gather(
        *(
            registrations_service.assign_code(
                STAFF, registration_id, today=PAST + timedelta(days=7), issuer=ISSUER
            )
            for registration_id in ids
        )
    )
    serials = sorted(
        result.registration.code.serial for result in results if result.registration.code
    )
    assert serials == [1, 2, 3, 4, 5, 6]


async def test_expiry_job_expires_and_delists(db: str) -> None:
    operator_id = uuid4()
    operator = Actor(operator_id, "operator")
    regulator = Actor(uuid4(), "regulator")
    directory = Directory({operator_id: "交通数据运营公司"})
    await in_notice(operator, "高速车流量", PAST)
    [resource] = await registrations_service.assign_due_codes(PAST + timedelta(days=7), ISSUER)
    code = (await registrations_service.get(STAFF, resource)).registration.code
    assert code is not None
    start = PAST + timedelta(days=7)
    authorization = await authorizations_service.grant(
        regulator,
        operator_id=operator_id,
        scope=Scope(kind=ScopeKind.DOMAIN, domains=frozenset({DataDomain.TRANSPORT})),
        resource_codes=[code],
        term=Term(start=start, end=start + timedelta(days=30)),
        conditions="不得提供原始数据",
        today=start,
        directory=directory,
    )
    product = await products_service.create(
        operator,
        Product(
            operator_id=str(operator_id),
            title="高速公路拥堵指数",
            description="基于收费站车流量计算的逐小时拥堵指数。",
            domain=DataDomain.TRANSPORT,
            source_resource_codes=frozenset({code}),
            delivery_form=DeliveryForm.API,
            update_cycle=UpdateCycle.DAILY,
            grade=Grade.GENERAL,
            quality=QualityIndicators(90, 90, 90, 90, 90),
            permitted_purposes=frozenset({Purpose.INDUSTRY}),
            prices=(Price(Purpose.INDUSTRY, ChargingUnit.PER_CALL, 10),),
        ),
        today=start,
        directory=directory,
    )
    # List it as the database would after registration, to isolate the expiry behaviour.
    await ProductRow.raw(
        "UPDATE listings_products SET state = 'listed', authorization_id = {}, "
        "registration_code = {}, listed_at = now() WHERE id = {}",
        authorization.id,
        str(UnifiedCode(ISSUER, SubjectKind.PRODUCT, 2020, 1)),
        product.id,
    ).run()
    leaves = await LedgerLeaf.count().run()

    assert await authorizations_service.expire_due(start + timedelta(days=30)) == []
    expired = await authorizations_service.expire_due(start + timedelta(days=31))
    assert expired == [authorization.id]
    record = await authorizations_service.get(regulator, authorization.id)
    assert record.authorization.state.value == "expired"
    delisted = await products_service.get(operator, product.id)
    assert delisted.product.state.value == "delisted"
    assert "到期" in delisted.product.delisting_reason
    assert await LedgerLeaf.count().run() == leaves + 1
