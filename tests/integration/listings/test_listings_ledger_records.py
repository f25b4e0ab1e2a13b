"""Reconciliation of the listings records with their leaves: authorizations with their state
changes, registrations with every step, and the registry of codes. A clean database reports
nothing; rows tampered in SQL (triggers off, as an attacker with database access would) are each
reported with what and where."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from uuid import UUID, uuid4

import asyncpg
import pytest

from ledger.note import NoteSigner
from ledger.reconcile import DiscrepancyKind, ReconcileOptions, ReconcileReport, reconcile
from listings import authorizations_service, registrations_service
from listings.authorization import Scope, Term
from listings.codes import UnifiedCode
from listings.context import Actor
from listings.domains import DataDomain, Grade, Purpose, ScopeKind, SubjectKind, UpdateCycle
from listings.ledger_records import AuthorizationRecords, RegistrationRecords, RegistryRecords
from listings.registration import RegistrationData, RegistrationKind

SIGNER = NoteSigner.generate("exchange.test/ledger")
OPTIONS = ReconcileOptions(
    verifier=SIGNER.verifier,
    record_sources=[AuthorizationRecords(), RegistrationRecords(), RegistryRecords()],
)
ISSUER = "TESTEX"
DAY = date(2024, 3, 4)
STAFF = Actor(uuid4(), "staff")
REGULATOR = Actor(uuid4(), "regulator")

CHANGED = DiscrepancyKind.RECORD_CHANGED
NOT_LOGGED = DiscrepancyKind.RECORD_NOT_LOGGED
MISSING = DiscrepancyKind.RECORD_MISSING


class Directory:
    def __init__(self, operators: dict[UUID, str]) -> None:
        self._operators = operators

    async def operator_name(self, organisation_id: UUID) -> str | None:
        return self._operators.get(organisation_id)

    async def names(self, organisation_ids: Iterable[UUID]) -> dict[UUID, str]:
        return {i: self._operators[i] for i in organisation_ids if i in self._operators}


def data(title: str) -> RegistrationData:
    return RegistrationData(
        subject_kind=SubjectKind.RESOURCE,
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


@dataclass(frozen=True)
class Seeded:
    changed_resource: UUID  # first registration of code 1, since amended by `change`
    change: UUID
    cancelled_resource: UUID  # first registration of code 2, cancelled by `cancellation`
    cancellation: UUID
    rejected: UUID
    authorization: UUID


async def registered(operator: Actor, kind: RegistrationKind, registration_data: RegistrationData
                     | None, *, target: UnifiedCode | None = None) -> UUID:
    record = await registrations_service.apply(
        operator, kind=kind, data=registration_data, target_code=target, statement="依法申请",
        product_id=None, today=DAY)
    await registrations_service.accept(STAFF, record.id)
    await registrations_service.start_review(STAFF, record.id)
    await registrations_service.open_notice(STAFF, record.id, today=DAY, notice_period_days=7)
    await registrations_service.file_objection(STAFF, record.id, grounds="数据来源存疑", today=DAY)
    await registrations_service.resolve_objection(STAFF, record.id, 1, upheld=False,
                                                  resolution="来源已核实")
    await registrations_service.assign_code(STAFF, record.id, today=DAY + timedelta(days=7),
                                            issuer=ISSUER)
    return record.id


async def seed() -> Seeded:
    operator_id = uuid4()
    operator = Actor(operator_id, "operator")
    first = await registered(operator, RegistrationKind.FIRST, data("高速车流量"))
    code = UnifiedCode(ISSUER, SubjectKind.RESOURCE, DAY.year, 1)
    amended = dataclasses.replace(data("高速车流量"), update_cycle=UpdateCycle.WEEKLY)
    change = await registered(operator, RegistrationKind.CHANGE, amended, target=code)
    second = await registered(operator, RegistrationKind.FIRST, data("港口吞吐量"))
    cancellation = await registered(operator, RegistrationKind.CANCELLATION, None,
                                    target=UnifiedCode(ISSUER, SubjectKind.RESOURCE, DAY.year, 2))
    rejected = await registrations_service.apply(
        operator, kind=RegistrationKind.FIRST, data=data("机场客流"), target_code=None,
        statement="", product_id=None, today=DAY)
    await registrations_service.reject(STAFF, rejected.id, ["材料不全"])
    start = DAY + timedelta(days=8)
    authorization = await authorizations_service.grant(
        REGULATOR, operator_id=operator_id,
        scope=Scope(kind=ScopeKind.DOMAIN, domains=frozenset({DataDomain.TRANSPORT})),
        resource_codes=[code], term=Term(start=start, end=start + timedelta(days=365)),
        conditions="不得提供原始数据", today=start, directory=Directory({operator_id: "运营公司"}))
    await authorizations_service.change_state(REGULATOR, authorization.id, action="suspend",
                                              reason="整改", today=start)
    await authorizations_service.change_state(REGULATOR, authorization.id, action="reinstate",
                                              reason="整改完成", today=start)
    return Seeded(first, change, second, cancellation, rejected.id, authorization.id)


async def tamper(database_url: str, *statements: str) -> None:
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute("SET session_replication_role = replica")
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


def findings(report: ReconcileReport) -> list[tuple[DiscrepancyKind, str]]:
    return [(item.kind, item.where) for item in report.discrepancies]


async def test_a_clean_listings_database_reports_nothing(db: str) -> None:
    await seed()
    report = await reconcile(OPTIONS)
    assert report.discrepancies == []


# Each case: SQL with {placeholders} for the seeded ids, and the findings as (kind, source,
# seeded record): the `where` of a finding is "<source> <kind of record>:<id>".
CASES = [
    pytest.param(
        ["UPDATE listings_authorizations SET term_end = '2099-12-31' WHERE id = '{authorization}'"],
        [(CHANGED, "authorizations", "authorization")], id="authorization-term"),
    pytest.param(
        [("UPDATE listings_authorizations SET state = 'revoked', state_reason = '违规' "
         "WHERE id = '{authorization}'")],
        [(CHANGED, "authorizations", "authorization")], id="authorization-state"),
    pytest.param(
        [("UPDATE listings_authorizations SET resource_codes = ARRAY['{second_code}'] "
         "WHERE id = '{authorization}'")],
        [(CHANGED, "authorizations", "authorization")], id="authorization-codes"),
    pytest.param(
        [("UPDATE listings_authorization_events SET actor = 'regulator:' || gen_random_uuid() "
         "WHERE authorization_id = '{authorization}' AND action = 'suspend'")],
        [(CHANGED, "authorizations", "authorization")], id="authorization-event-actor"),
    pytest.param(
        ["DELETE FROM listings_authorization_events WHERE authorization_id = '{authorization}'",
         "DELETE FROM listings_authorizations WHERE id = '{authorization}'"],
        [(MISSING, "authorizations", "authorization")], id="authorization-deleted"),
    pytest.param(
        [("INSERT INTO listings_authorizations SELECT gen_random_uuid(), operator_id, granted_by, "
         "scope_kind, domains, scenarios, resource_codes, term_start, term_end, conditions, "
         "state, state_reason, granted_at, updated_at FROM listings_authorizations")],
        [(NOT_LOGGED, "authorizations", None)], id="authorization-never-logged"),
    pytest.param(
        ["UPDATE listings_registrations SET holder = '某公司' WHERE id = '{changed_resource}'"],
        [(CHANGED, "registrations", "changed_resource")], id="registration-holder"),
    pytest.param(
        ["UPDATE listings_registrations SET title = '改名' WHERE id = '{change}'"],
        [(CHANGED, "registrations", "change"), (CHANGED, "registry", "change")],
        id="registration-title-in-force"),
    pytest.param(
        ["UPDATE listings_registrations SET state = 'stopped' WHERE id = '{rejected}'"],
        [(CHANGED, "registrations", "rejected")], id="registration-state"),
    pytest.param(
        [("UPDATE listings_registrations SET state = 'registered' "
         "WHERE id = '{cancelled_resource}'")],
        [(CHANGED, "registrations", "cancelled_resource")], id="registration-uncancelled"),
    pytest.param(
        ["UPDATE listings_registrations SET rejection_reasons = '{{}}' WHERE id = '{rejected}'"],
        [(CHANGED, "registrations", "rejected")], id="registration-reasons"),
    pytest.param(
        ["DELETE FROM listings_registration_events WHERE registration_id = '{rejected}'",
         "DELETE FROM listings_registrations WHERE id = '{rejected}'"],
        [(MISSING, "registrations", "rejected")], id="registration-deleted"),
    pytest.param(
        [("UPDATE listings_registry SET holder_org_id = gen_random_uuid() "
         "WHERE first_registration_id = '{changed_resource}'")],
        [(CHANGED, "registry", "changed_resource")], id="registry-holder"),
    pytest.param(
        [("UPDATE listings_registry SET grade = 'important' "
         "WHERE first_registration_id = '{changed_resource}'")],
        [(CHANGED, "registry", "change")], id="registry-grade"),
]


@pytest.mark.parametrize(("statements", "expected"), CASES)
async def test_tampered_listings_records_are_found(
    db: str, statements: list[str], expected: list[tuple[DiscrepancyKind, str, str | None]]
) -> None:
    seeded = await seed()
    ids = {name: str(value) for name, value in dataclasses.asdict(seeded).items()}
    ids["second_code"] = str(UnifiedCode(ISSUER, SubjectKind.RESOURCE, DAY.year, 2))
    await tamper(db, *(statement.format(**ids) for statement in statements))
    report = await reconcile(OPTIONS)
    prefix = {"authorization": "authorization", "rejected": "registration"}
    wanted = []
    for kind, source, record in expected:
        if record is None:  # a forged row: its id is not known in advance
            forged = [item.where for item in report.discrepancies if item.kind is kind]
            assert len(forged) == 1
            wanted.append((kind, forged[0]))
            continue
        wanted.append((kind, f"{source} {prefix.get(record, 'registration')}:{ids[record]}"))
    assert findings(report) == wanted
    for item in report.discrepancies:
        assert item.detail  # says what differs: a leaf and the fields, or why
