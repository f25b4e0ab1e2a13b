from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime

import pytest

from listings.authorization import (
    Authorization,
    AuthorizationState,
    CoverageReason,
    Scope,
    Term,
    expire,
    find_conflict,
    grant,
    reinstate,
    revoke,
    suspend,
    validate_new_term,
)
from listings.codes import UnifiedCode
from listings.domains import DataDomain, ScopeKind, SubjectKind
from listings.errors import DomainRuleError, DomainValueError, InvalidTransitionError

MakeAuthorization = Callable[..., Authorization]
IN_TERM = date(2025, 6, 1)


def resource(serial: int) -> UnifiedCode:
    return UnifiedCode(issuer="GZDEX", kind=SubjectKind.RESOURCE, year=2024, serial=serial)


def domain_scope(*domains: DataDomain) -> Scope:
    return Scope(kind=ScopeKind.DOMAIN, domains=frozenset(domains))


def scenario_scope(domain: DataDomain, *scenarios: str) -> Scope:
    return Scope(
        kind=ScopeKind.SCENARIO, domains=frozenset({domain}), scenarios=frozenset(scenarios)
    )


WHOLE = Scope(kind=ScopeKind.WHOLE)


# --- term -------------------------------------------------------------------------------------


def test_term_is_inclusive_of_both_days() -> None:
    term = Term(start=date(2025, 1, 1), end=date(2025, 12, 31))
    assert term.includes(date(2025, 1, 1))
    assert term.includes(date(2025, 12, 31))
    assert not term.includes(date(2024, 12, 31))
    assert not term.includes(date(2026, 1, 1))
    assert not term.has_ended(date(2025, 12, 31))
    assert term.has_ended(date(2026, 1, 1))


@pytest.mark.parametrize("end", [date(2025, 1, 1), date(2024, 12, 31)])
def test_term_must_end_after_it_starts(end: date) -> None:
    with pytest.raises(DomainRuleError) as caught:
        Term(start=date(2025, 1, 1), end=end)
    assert caught.value.field == "term.end"


def test_term_refuses_datetimes() -> None:
    with pytest.raises(DomainValueError) as caught:
        Term(start=datetime(2025, 1, 1, tzinfo=UTC), end=date(2025, 2, 1))
    assert caught.value.field == "term.start"


def test_term_overlap_shares_a_day() -> None:
    first = Term(start=date(2025, 1, 1), end=date(2025, 6, 30))
    assert first.overlaps(Term(start=date(2025, 6, 30), end=date(2025, 12, 31)))
    assert not first.overlaps(Term(start=date(2025, 7, 1), end=date(2025, 12, 31)))


# --- scope ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "domains", "scenarios", "field"),
    [
        (ScopeKind.WHOLE, {DataDomain.FINANCE}, set(), "scope.domains"),
        (ScopeKind.DOMAIN, set(), set(), "scope.domains"),
        (ScopeKind.DOMAIN, {DataDomain.FINANCE}, {"普惠金融"}, "scope.scenarios"),
        (ScopeKind.SCENARIO, {DataDomain.FINANCE}, set(), "scope.scenarios"),
        (ScopeKind.SCENARIO, set(), {"普惠金融"}, "scope.domains"),
        (ScopeKind.SCENARIO, {DataDomain.FINANCE}, {"  "}, "scope.scenarios"),
    ],
)
def test_scope_shape_follows_its_kind(
    kind: ScopeKind, domains: set[DataDomain], scenarios: set[str], field: str
) -> None:
    with pytest.raises((DomainRuleError, DomainValueError)) as caught:
        Scope(kind=kind, domains=frozenset(domains), scenarios=frozenset(scenarios))
    assert caught.value.field == field


def test_scope_coverage_of_domains_and_scenarios() -> None:
    assert WHOLE.covers_domain(DataDomain.CULTURAL_RELICS)
    assert WHOLE.covers_scenario(None)
    finance = domain_scope(DataDomain.FINANCE)
    assert finance.covers_domain(DataDomain.FINANCE)
    assert not finance.covers_domain(DataDomain.HEALTH)
    lending = scenario_scope(DataDomain.FINANCE, " 普惠金融 ")
    assert lending.scenarios == frozenset({"普惠金融"})
    assert lending.covers_scenario("普惠金融")
    assert not lending.covers_scenario("保险理赔")
    assert not lending.covers_scenario(None)


@pytest.mark.parametrize(
    ("first", "second", "overlap"),
    [
        (WHOLE, domain_scope(DataDomain.HEALTH), True),
        (
            domain_scope(DataDomain.HEALTH),
            domain_scope(DataDomain.HEALTH, DataDomain.FINANCE),
            True,
        ),
        (domain_scope(DataDomain.HEALTH), domain_scope(DataDomain.FINANCE), False),
        (domain_scope(DataDomain.FINANCE), scenario_scope(DataDomain.FINANCE, "普惠金融"), True),
        (
            scenario_scope(DataDomain.FINANCE, "普惠金融"),
            scenario_scope(DataDomain.FINANCE, "保险理赔"),
            False,
        ),
        (
            scenario_scope(DataDomain.FINANCE, "普惠金融"),
            scenario_scope(DataDomain.HEALTH, "普惠金融"),
            False,
        ),
        (
            scenario_scope(DataDomain.FINANCE, "普惠金融", "保险理赔"),
            scenario_scope(DataDomain.FINANCE, "保险理赔"),
            True,
        ),
    ],
)
def test_scope_overlap_is_symmetric(first: Scope, second: Scope, overlap: bool) -> None:
    assert first.overlaps(second) is overlap
    assert second.overlaps(first) is overlap


# --- the authorization value --------------------------------------------------------------------


def test_a_valid_authorization_starts_active(make_authorization: MakeAuthorization) -> None:
    authorization = make_authorization(conditions="  不得对外提供原始数据  ")
    assert authorization.state is AuthorizationState.ACTIVE
    assert authorization.conditions == "不得对外提供原始数据"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"operator_id": " "}, "operator_id"),
        ({"resource_codes": frozenset()}, "resource_codes"),
        (
            {"resource_codes": frozenset({UnifiedCode("GZDEX", SubjectKind.PRODUCT, 2025, 1)})},
            "resource_codes",
        ),
        ({"conditions": ""}, "conditions"),
        ({"state": AuthorizationState.SUSPENDED}, "state_reason"),
        ({"state": "active"}, "state"),
    ],
)
def test_invalid_authorizations_name_the_field(
    make_authorization: MakeAuthorization, overrides: dict[str, object], field: str
) -> None:
    with pytest.raises((DomainRuleError, DomainValueError)) as caught:
        make_authorization(**overrides)
    assert caught.value.field == field


# --- coverage ---------------------------------------------------------------------------------


def test_covers_a_use_inside_scope_resources_and_term(
    make_authorization: MakeAuthorization,
) -> None:
    result = make_authorization().covers(DataDomain.METEOROLOGY, [resource(1)], IN_TERM)
    assert result.covered
    assert bool(result)
    assert result.gaps == ()


def test_coverage_explains_every_gap(make_authorization: MakeAuthorization) -> None:
    authorization = suspend(make_authorization(), reason="年度检查发现安全隐患")
    result = authorization.covers(DataDomain.HEALTH, [resource(1), resource(9)], date(2028, 1, 1))
    assert not result
    assert [gap.reason for gap in result.gaps] == [
        CoverageReason.NOT_ACTIVE,
        CoverageReason.OUT_OF_TERM,
        CoverageReason.DOMAIN_OUTSIDE_SCOPE,
        CoverageReason.RESOURCE_NOT_COVERED,
    ]
    assert [gap.field for gap in result.gaps] == [
        "authorization.state",
        "authorization.term",
        "domain",
        "source_resource_codes",
    ]
    assert "年度检查发现安全隐患" in result.gaps[0].message
    assert str(resource(9)) in result.gaps[3].message


def test_whole_scope_covers_any_domain_but_only_listed_resources(
    make_authorization: MakeAuthorization,
) -> None:
    authorization = make_authorization(scope=WHOLE)
    assert authorization.covers(DataDomain.CULTURAL_RELICS, [resource(2)], IN_TERM)
    result = authorization.covers(DataDomain.CULTURAL_RELICS, [resource(3)], IN_TERM)
    assert [gap.reason for gap in result.gaps] == [CoverageReason.RESOURCE_NOT_COVERED]


def test_scenario_scope_needs_a_named_scenario(make_authorization: MakeAuthorization) -> None:
    authorization = make_authorization(scope=scenario_scope(DataDomain.TRANSPORT, "智慧物流"))
    assert authorization.covers(DataDomain.TRANSPORT, [resource(1)], IN_TERM, scenario="智慧物流")
    for scenario in (None, "网约车监管"):
        result = authorization.covers(DataDomain.TRANSPORT, [resource(1)], IN_TERM, scenario)
        assert [gap.reason for gap in result.gaps] == [CoverageReason.SCENARIO_OUTSIDE_SCOPE]
        assert result.gaps[0].field == "scenario"


# --- exit mechanism ---------------------------------------------------------------------------


def test_suspend_and_reinstate(make_authorization: MakeAuthorization) -> None:
    suspended = suspend(make_authorization(), reason="整改期间暂停")
    assert suspended.state is AuthorizationState.SUSPENDED
    assert suspended.state_reason == "整改期间暂停"
    reinstated = reinstate(suspended, reason="整改完成", on=IN_TERM)
    assert reinstated.state is AuthorizationState.ACTIVE
    assert reinstated.state_reason == "整改完成"


@pytest.mark.parametrize("start_suspended", [False, True])
def test_revoke_from_active_or_suspended_is_final(
    make_authorization: MakeAuthorization, start_suspended: bool
) -> None:
    authorization = make_authorization()
    if start_suspended:
        authorization = suspend(authorization, reason="调查中")
    revoked = revoke(authorization, reason="违规对外提供原始数据")
    assert revoked.state is AuthorizationState.REVOKED
    with pytest.raises(InvalidTransitionError) as caught:
        reinstate(revoked, reason="申诉", on=IN_TERM)
    assert caught.value.field == "state"
    with pytest.raises(InvalidTransitionError):
        suspend(revoked, reason="再次暂停")
    with pytest.raises(InvalidTransitionError):
        expire(revoked, reason="到期", on=date(2028, 1, 1))


def test_expire_only_after_the_last_day(make_authorization: MakeAuthorization) -> None:
    authorization = make_authorization()
    with pytest.raises(DomainRuleError) as caught:
        expire(authorization, reason="到期", on=date(2027, 12, 31))
    assert caught.value.field == "term.end"
    expired = expire(authorization, reason="运营期限届满", on=date(2028, 1, 1))
    assert expired.state is AuthorizationState.EXPIRED
    with pytest.raises(InvalidTransitionError):
        revoke(expired, reason="撤销")


def test_a_suspended_authorization_past_its_term_cannot_be_reinstated(
    make_authorization: MakeAuthorization,
) -> None:
    suspended = suspend(make_authorization(), reason="暂停")
    with pytest.raises(DomainRuleError) as caught:
        reinstate(suspended, reason="恢复", on=date(2028, 1, 1))
    assert caught.value.field == "term.end"
    assert expire(suspended, reason="到期", on=date(2028, 1, 1)).state is AuthorizationState.EXPIRED


def test_invalid_moves_and_missing_reasons(make_authorization: MakeAuthorization) -> None:
    active = make_authorization()
    with pytest.raises(InvalidTransitionError):
        reinstate(active, reason="恢复", on=IN_TERM)
    with pytest.raises(InvalidTransitionError):
        suspend(suspend(active, reason="暂停"), reason="再次暂停")
    for reason in ("", "   "):
        with pytest.raises(DomainValueError) as caught:
            suspend(active, reason=reason)
        assert caught.value.field == "reason"
        with pytest.raises(DomainValueError):
            revoke(active, reason=reason)


# --- granting new terms -----------------------------------------------------------------------


def test_a_new_term_must_not_start_in_the_past() -> None:
    today = date(2025, 3, 1)
    validate_new_term(Term(start=today, end=date(2026, 3, 1)), today)
    with pytest.raises(DomainRuleError) as caught:
        validate_new_term(Term(start=date(2025, 2, 28), end=date(2026, 3, 1)), today)
    assert caught.value.field == "term.start"


def test_grant_refuses_an_overlap_with_an_in_force_authorization(
    make_authorization: MakeAuthorization,
) -> None:
    existing = suspend(make_authorization(), reason="暂停")
    new_term = Term(start=date(2027, 6, 1), end=date(2029, 5, 31))
    with pytest.raises(DomainRuleError) as caught:
        grant(
            operator_id=existing.operator_id,
            scope=domain_scope(DataDomain.TRANSPORT),
            resource_codes=[resource(3)],
            term=new_term,
            conditions="仅限交通领域",
            today=date(2025, 3, 1),
            existing=[existing],
        )
    assert caught.value.field == "term"
    assert "suspended" in caught.value.message


def test_grant_past_start_is_refused(make_authorization: MakeAuthorization) -> None:
    with pytest.raises(DomainRuleError) as caught:
        grant(
            operator_id="operator-9",
            scope=WHOLE,
            resource_codes=[resource(3)],
            term=Term(start=date(2025, 1, 1), end=date(2026, 1, 1)),
            conditions="整体授权",
            today=date(2025, 3, 1),
            existing=[],
        )
    assert caught.value.field == "term.start"


def test_no_conflict_with_other_operators_ended_grants_or_disjoint_ground(
    make_authorization: MakeAuthorization,
) -> None:
    candidate = make_authorization(term=Term(start=date(2026, 1, 1), end=date(2026, 12, 31)))
    others = [
        make_authorization(operator_id="someone-else"),
        revoke(make_authorization(), reason="撤销"),
        make_authorization(scope=domain_scope(DataDomain.HEALTH)),
        make_authorization(term=Term(start=date(2025, 1, 1), end=date(2025, 12, 31))),
    ]
    assert find_conflict(candidate, others) is None
    overlapping = make_authorization(scope=WHOLE)
    assert find_conflict(candidate, [*others, overlapping]) is overlapping


def test_grant_returns_an_active_authorization(make_authorization: MakeAuthorization) -> None:
    existing = make_authorization()
    granted = grant(
        operator_id=existing.operator_id,
        scope=scenario_scope(DataDomain.FINANCE, "普惠金融"),
        resource_codes={resource(5)},
        term=Term(start=date(2025, 3, 1), end=date(2027, 2, 28)),
        conditions="仅限普惠金融场景,模型结果出域",
        today=date(2025, 3, 1),
        existing=[existing],
    )
    assert granted.state is AuthorizationState.ACTIVE
    assert granted.resource_codes == frozenset({resource(5)})
