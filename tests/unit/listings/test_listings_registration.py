from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest

from listings.codes import UnifiedCode
from listings.domains import Grade, Purpose, SubjectKind
from listings.errors import DomainRuleError, DomainValueError, InvalidTransitionError
from listings.registration import (
    MAX_NOTICE_PERIOD_DAYS,
    NoticePeriod,
    ObjectionState,
    Registration,
    RegistrationData,
    RegistrationKind,
    RegistrationState,
    accept,
    apply_amendment,
    apply_cancellation,
    apply_first,
    dismiss_objection,
    file_objection,
    mark_cancelled,
    open_notice,
    register,
    reject,
    start_review,
    uphold_objection,
)

MakeData = Callable[..., RegistrationData]
APPLIED_ON = date(2025, 3, 1)
NOTICE_OPENS = date(2025, 3, 10)
NOTICE_DAYS = 7
NOTICE_OVER = date(2025, 3, 17)
CODE = UnifiedCode(issuer="GZDEX", kind=SubjectKind.PRODUCT, year=2025, serial=42)


def in_notice(registration: Registration) -> Registration:
    reviewed = start_review(accept(registration))
    return open_notice(reviewed, on=NOTICE_OPENS, notice_period_days=NOTICE_DAYS)


def registered_first(data: RegistrationData) -> Registration:
    return register(
        in_notice(apply_first(data, applied_on=APPLIED_ON)), on=NOTICE_OVER, new_code=CODE
    )


# --- registration data ------------------------------------------------------------------------


def test_registration_data_is_stripped(make_registration_data: MakeData) -> None:
    data = make_registration_data(holder="  某省公共数据运营有限公司 ")
    assert data.holder == "某省公共数据运营有限公司"


@pytest.mark.parametrize("kind", [SubjectKind.PRODUCT, SubjectKind.SERVICE])
def test_core_products_and_services_are_refused(
    make_registration_data: MakeData, kind: SubjectKind
) -> None:
    with pytest.raises(DomainRuleError) as caught:
        make_registration_data(subject_kind=kind, grade=Grade.CORE)
    assert caught.value.field == "data.grade"


def test_core_resources_may_be_registered(make_registration_data: MakeData) -> None:
    data = make_registration_data(subject_kind=SubjectKind.RESOURCE, grade=Grade.CORE)
    assert data.grade is Grade.CORE


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"holder": ""}, "data.holder"),
        ({"title": "题" * 101}, "data.title"),
        ({"data_source": " "}, "data.data_source"),
        ({"security_measures": "加密\x00"}, "data.security_measures"),
        ({"permitted_purposes": frozenset()}, "data.permitted_purposes"),
        ({"permitted_purposes": frozenset({"industry"})}, "data.permitted_purposes"),
        ({"domain": "meteorology"}, "data.domain"),
        ({"grade": "general"}, "data.grade"),
    ],
)
def test_invalid_registration_data_names_the_field(
    make_registration_data: MakeData, overrides: dict[str, object], field: str
) -> None:
    with pytest.raises(DomainValueError) as caught:
        make_registration_data(**overrides)
    assert caught.value.field == field


# --- first registration workflow --------------------------------------------------------------


def test_first_registration_runs_through_notice_to_a_code(make_registration_data: MakeData) -> None:
    registration = apply_first(make_registration_data(), applied_on=APPLIED_ON)
    assert registration.state is RegistrationState.APPLIED
    registration = accept(registration)
    assert registration.state is RegistrationState.ACCEPTED
    registration = start_review(registration)
    assert registration.state is RegistrationState.UNDER_REVIEW
    registration = open_notice(registration, on=NOTICE_OPENS, notice_period_days=NOTICE_DAYS)
    assert registration.state is RegistrationState.IN_NOTICE
    assert registration.notice == NoticePeriod(starts_on=NOTICE_OPENS, days=NOTICE_DAYS)
    registration = register(registration, on=NOTICE_OVER, new_code=CODE)
    assert registration.state is RegistrationState.REGISTERED
    assert registration.code == CODE
    assert registration.registered_on == NOTICE_OVER


def test_notice_period_counts_calendar_days() -> None:
    notice = NoticePeriod(starts_on=NOTICE_OPENS, days=NOTICE_DAYS)
    assert notice.ends_on == NOTICE_OVER
    assert notice.is_open(NOTICE_OPENS)
    assert notice.is_open(date(2025, 3, 16))
    assert not notice.is_open(NOTICE_OVER)
    assert not notice.is_open(date(2025, 3, 9))
    assert notice.has_ended(NOTICE_OVER)
    assert not notice.has_ended(date(2025, 3, 16))


@pytest.mark.parametrize("days", [0, MAX_NOTICE_PERIOD_DAYS + 1, True, 7.0])
def test_notice_period_must_be_a_sensible_number_of_days(
    make_registration_data: MakeData, days: object
) -> None:
    reviewed = start_review(accept(apply_first(make_registration_data(), applied_on=APPLIED_ON)))
    with pytest.raises(DomainValueError) as caught:
        open_notice(reviewed, on=NOTICE_OPENS, notice_period_days=days)  # type: ignore[arg-type]
    assert caught.value.field == "notice_period_days"


def test_no_code_before_the_notice_is_over(make_registration_data: MakeData) -> None:
    registration = in_notice(apply_first(make_registration_data(), applied_on=APPLIED_ON))
    with pytest.raises(DomainRuleError) as caught:
        register(registration, on=date(2025, 3, 16), new_code=CODE)
    assert caught.value.field == "notice"


@pytest.mark.parametrize(
    ("new_code", "field"),
    [
        (None, "new_code"),
        (UnifiedCode("GZDEX", SubjectKind.RESOURCE, 2025, 42), "new_code"),
        (UnifiedCode("GZDEX", SubjectKind.PRODUCT, 2024, 42), "new_code"),
    ],
)
def test_first_registration_needs_a_code_of_its_kind_and_year(
    make_registration_data: MakeData, new_code: UnifiedCode | None, field: str
) -> None:
    registration = in_notice(apply_first(make_registration_data(), applied_on=APPLIED_ON))
    with pytest.raises((DomainRuleError, DomainValueError)) as caught:
        register(registration, on=NOTICE_OVER, new_code=new_code)
    assert caught.value.field == field


def test_rejection_at_acceptance_and_at_review(make_registration_data: MakeData) -> None:
    applied = apply_first(make_registration_data(), applied_on=APPLIED_ON)
    not_accepted = reject(applied, reasons=["材料不全"])
    assert not_accepted.state is RegistrationState.REJECTED
    assert not_accepted.rejection_reasons == ("材料不全",)
    under_review = start_review(accept(applied))
    failed = reject(under_review, reasons=["数据来源证明不足", " 安全措施未说明 "])
    assert failed.rejection_reasons == ("数据来源证明不足", "安全措施未说明")
    with pytest.raises(InvalidTransitionError):
        accept(failed)


def test_rejection_needs_reasons_and_a_rejectable_state(make_registration_data: MakeData) -> None:
    applied = apply_first(make_registration_data(), applied_on=APPLIED_ON)
    with pytest.raises(DomainValueError) as caught:
        reject(applied, reasons=[])
    assert caught.value.field == "reasons"
    with pytest.raises(DomainValueError) as caught:
        reject(applied, reasons=["材料不全", ""])
    assert caught.value.field == "reasons[1]"
    for registration in (accept(applied), in_notice(applied)):
        with pytest.raises(InvalidTransitionError) as moved:
            reject(registration, reasons=["不予登记"])
        assert moved.value.field == "state"


def test_steps_out_of_order_are_invalid_transitions(make_registration_data: MakeData) -> None:
    applied = apply_first(make_registration_data(), applied_on=APPLIED_ON)
    with pytest.raises(InvalidTransitionError):
        start_review(applied)
    with pytest.raises(InvalidTransitionError):
        open_notice(accept(applied), on=NOTICE_OPENS, notice_period_days=NOTICE_DAYS)
    with pytest.raises(InvalidTransitionError):
        register(start_review(accept(applied)), on=NOTICE_OVER, new_code=CODE)
    with pytest.raises(InvalidTransitionError):
        accept(accept(applied))
    with pytest.raises(InvalidTransitionError):
        file_objection(applied, objector="某企业", grounds="权属争议", on=NOTICE_OPENS)


# --- objections -------------------------------------------------------------------------------


def test_an_open_objection_blocks_the_code_until_dismissed(
    make_registration_data: MakeData,
) -> None:
    registration = in_notice(apply_first(make_registration_data(), applied_on=APPLIED_ON))
    registration = file_objection(
        registration,
        objector="某数据科技公司",
        grounds="数据来源存在权属争议",
        on=date(2025, 3, 16),
    )
    assert [o.number for o in registration.objections] == [1]
    with pytest.raises(DomainRuleError) as caught:
        register(registration, on=NOTICE_OVER, new_code=CODE)
    assert caught.value.field == "objections"
    assert "#1" in caught.value.message
    registration = dismiss_objection(registration, number=1, resolution="权属证明材料充分")
    assert registration.objections[0].state is ObjectionState.DISMISSED
    assert registration.state is RegistrationState.IN_NOTICE
    assert register(registration, on=NOTICE_OVER, new_code=CODE).code == CODE


def test_an_upheld_objection_stops_the_registration(make_registration_data: MakeData) -> None:
    registration = in_notice(apply_first(make_registration_data(), applied_on=APPLIED_ON))
    registration = file_objection(registration, objector="甲", grounds="理由一", on=NOTICE_OPENS)
    registration = file_objection(registration, objector="乙", grounds="理由二", on=NOTICE_OPENS)
    registration = uphold_objection(registration, number=2, resolution="异议成立,数据权属不清")
    assert registration.state is RegistrationState.STOPPED
    assert registration.state.is_final
    assert registration.objections[1].state is ObjectionState.UPHELD
    with pytest.raises(InvalidTransitionError):
        register(registration, on=NOTICE_OVER, new_code=CODE)
    with pytest.raises(InvalidTransitionError):
        dismiss_objection(registration, number=1, resolution="不成立")


@pytest.mark.parametrize("filed_on", [date(2025, 3, 9), NOTICE_OVER])
def test_objections_only_during_the_notice(
    make_registration_data: MakeData, filed_on: date
) -> None:
    registration = in_notice(apply_first(make_registration_data(), applied_on=APPLIED_ON))
    with pytest.raises(DomainRuleError) as caught:
        file_objection(registration, objector="某企业", grounds="权属争议", on=filed_on)
    assert caught.value.field == "filed_on"


def test_resolving_objections_checks_number_state_and_resolution(
    make_registration_data: MakeData,
) -> None:
    registration = in_notice(apply_first(make_registration_data(), applied_on=APPLIED_ON))
    registration = file_objection(registration, objector="甲", grounds="理由", on=NOTICE_OPENS)
    with pytest.raises(DomainValueError) as caught:
        dismiss_objection(registration, number=2, resolution="不成立")
    assert caught.value.field == "objection_number"
    with pytest.raises(DomainValueError) as caught:
        uphold_objection(registration, number=1, resolution=" ")
    assert caught.value.field == "resolution"
    dismissed = dismiss_objection(registration, number=1, resolution="不成立")
    with pytest.raises(InvalidTransitionError) as moved:
        dismiss_objection(dismissed, number=1, resolution="再次驳回")
    assert moved.value.field == "objection.state"
    with pytest.raises(DomainValueError) as caught:
        file_objection(registration, objector="", grounds="理由", on=NOTICE_OPENS)
    assert caught.value.field == "objector"


# --- change, correction and cancellation --------------------------------------------------------


def test_a_change_keeps_the_code(make_registration_data: MakeData) -> None:
    original = registered_first(make_registration_data())
    new_data = make_registration_data(permitted_purposes=frozenset({Purpose.INDUSTRY}))
    change = apply_amendment(
        RegistrationKind.CHANGE,
        new_data,
        target=original,
        statement="停止公益用途授权",
        applied_on=date(2025, 4, 1),
    )
    assert change.target_code == CODE
    change = register(in_notice(change), on=NOTICE_OVER, target=original)
    assert change.state is RegistrationState.REGISTERED
    assert change.code == CODE
    assert change.data.permitted_purposes == frozenset({Purpose.INDUSTRY})


def test_an_amendment_must_match_the_targets_kind_and_holder(
    make_registration_data: MakeData,
) -> None:
    original = registered_first(make_registration_data())
    with pytest.raises(DomainRuleError) as caught:
        apply_amendment(
            RegistrationKind.CORRECTION,
            make_registration_data(holder="另一家公司"),
            target=original,
            statement="更正持有人",
            applied_on=APPLIED_ON,
        )
    assert caught.value.field == "data.holder"
    with pytest.raises(DomainRuleError) as caught:
        apply_amendment(
            RegistrationKind.CORRECTION,
            make_registration_data(subject_kind=SubjectKind.SERVICE),
            target=original,
            statement="更正类型",
            applied_on=APPLIED_ON,
        )
    assert caught.value.field == "data.subject_kind"
    with pytest.raises(DomainValueError) as refused:
        apply_amendment(
            RegistrationKind.CANCELLATION,
            make_registration_data(),
            target=original,
            statement="注销",
            applied_on=APPLIED_ON,
        )
    assert refused.value.field == "kind"
    with pytest.raises(DomainValueError) as refused:
        apply_amendment(
            RegistrationKind.CHANGE,
            make_registration_data(),
            target=original,
            statement="",
            applied_on=APPLIED_ON,
        )
    assert refused.value.field == "statement"


def test_an_amendment_needs_a_registered_target(make_registration_data: MakeData) -> None:
    pending = in_notice(apply_first(make_registration_data(), applied_on=APPLIED_ON))
    with pytest.raises(DomainRuleError) as caught:
        apply_amendment(
            RegistrationKind.CHANGE,
            make_registration_data(),
            target=pending,
            statement="变更",
            applied_on=APPLIED_ON,
        )
    assert caught.value.field == "target_code"


def test_registering_an_amendment_rechecks_its_target(make_registration_data: MakeData) -> None:
    original = registered_first(make_registration_data())
    correction = in_notice(
        apply_amendment(
            RegistrationKind.CORRECTION,
            make_registration_data(title="全省逐小时气象观测数据产品(更正)"),
            target=original,
            statement="更正名称",
            applied_on=APPLIED_ON,
        )
    )
    with pytest.raises(DomainRuleError) as caught:
        register(correction, on=NOTICE_OVER)
    assert caught.value.field == "target_code"
    with pytest.raises(DomainRuleError) as caught:
        register(correction, on=NOTICE_OVER, new_code=CODE, target=original)
    assert caught.value.field == "new_code"
    cancellation = register(
        in_notice(apply_cancellation(original, statement="产品停止运营", applied_on=APPLIED_ON)),
        on=NOTICE_OVER,
        target=original,
    )
    cancelled = mark_cancelled(original, cancellation=cancellation)
    with pytest.raises(DomainRuleError) as caught:
        register(correction, on=NOTICE_OVER, target=cancelled)
    assert caught.value.field == "target_code"


def test_a_cancellation_cancels_the_code(make_registration_data: MakeData) -> None:
    original = registered_first(make_registration_data())
    cancellation = apply_cancellation(original, statement="产品停止运营", applied_on=APPLIED_ON)
    assert cancellation.kind is RegistrationKind.CANCELLATION
    assert cancellation.data == original.data
    cancellation = register(in_notice(cancellation), on=NOTICE_OVER, target=original)
    cancelled = mark_cancelled(original, cancellation=cancellation)
    assert cancelled.state is RegistrationState.CANCELLED
    assert cancelled.code == CODE
    with pytest.raises(InvalidTransitionError):
        mark_cancelled(cancelled, cancellation=cancellation)
    with pytest.raises(DomainRuleError) as caught:
        apply_cancellation(cancelled, statement="再次注销", applied_on=APPLIED_ON)
    assert caught.value.field == "target_code"


def test_only_a_registered_cancellation_of_that_code_cancels(
    make_registration_data: MakeData,
) -> None:
    original = registered_first(make_registration_data())
    pending = apply_cancellation(original, statement="注销", applied_on=APPLIED_ON)
    with pytest.raises(DomainRuleError) as caught:
        mark_cancelled(original, cancellation=pending)
    assert caught.value.field == "cancellation"
    other_code = UnifiedCode("GZDEX", SubjectKind.PRODUCT, 2025, 43)
    other = dataclasses.replace(original, code=other_code)
    other_cancellation = register(
        in_notice(apply_cancellation(other, statement="注销", applied_on=APPLIED_ON)),
        on=NOTICE_OVER,
        target=other,
    )
    with pytest.raises(DomainRuleError) as caught:
        mark_cancelled(original, cancellation=other_cancellation)
    assert caught.value.field == "cancellation"


# --- invariants of stored registrations ---------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"state": RegistrationState.REGISTERED}, "notice"),
        (
            {
                "state": RegistrationState.REGISTERED,
                "notice": NoticePeriod(starts_on=NOTICE_OPENS, days=NOTICE_DAYS),
            },
            "code",
        ),
        ({"code": CODE}, "registered_on"),
        ({"state": RegistrationState.REJECTED}, "rejection_reasons"),
        ({"target_code": CODE}, "target_code"),
        ({"kind": RegistrationKind.CHANGE, "statement": "变更"}, "target_code"),
    ],
)
def test_inconsistent_registrations_cannot_be_built(
    make_registration_data: MakeData, changes: dict[str, Any], field: str
) -> None:
    base = apply_first(make_registration_data(), applied_on=APPLIED_ON)
    with pytest.raises(DomainRuleError) as caught:
        dataclasses.replace(base, **changes)
    assert caught.value.field == field


def test_the_target_code_must_be_of_the_subjects_kind(make_registration_data: MakeData) -> None:
    with pytest.raises(DomainRuleError) as caught:
        Registration(
            kind=RegistrationKind.CHANGE,
            data=make_registration_data(),
            applied_on=APPLIED_ON,
            target_code=UnifiedCode("GZDEX", SubjectKind.RESOURCE, 2025, 1),
            statement="变更",
        )
    assert caught.value.field == "target_code"
