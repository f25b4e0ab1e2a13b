"""Registration and code assignment (登记赋码, MISSION §2).

Workflow of one registration::

    applied ──accept──▶ accepted ──start_review──▶ under_review ──open_notice──▶ in_notice
       │                                               │                           │
       └──reject──▶ rejected ◀──────reject─────────────┘                           │
                                                                                   │
    in_notice ──register (notice over, no open objection)──▶ registered
    in_notice ──uphold_objection──▶ stopped
    registered ──mark_cancelled (its code was cancelled)──▶ cancelled

Rejection happens at acceptance (不予受理, from ``applied``) or at formal review (from
``under_review``). During the public notice (公示) anyone may file an objection (异议); each is
upheld or dismissed. An upheld objection stops the registration; the code is assigned only once
the notice period is over with every objection dismissed.

What a code identifies, and the four kinds
------------------------------------------
A unified code identifies the registered *subject* (a data resource, product or service). The
first registration (首次登记) assigns it. Change (变更) and correction (更正) registrations refer
to that code and, once registered, carry the same code: the registry's record for the code now
shows the changed data, so products that cite a resource by code keep pointing at it. A
cancellation registration (注销登记), once registered, cancels the code: every registered
registration carrying that code moves to ``cancelled`` via ``mark_cancelled``.
Change, correction and cancellation must refer to a registered code of the same subject kind
and the same holder; this is checked when applying and again when registering, because the
target may have been cancelled in between.

Grades (MISSION §3): core data is never traded, so products and services graded core are
refused at registration; a data resource may be registered as core (it is catalogued and
governed) but can never be the source of a product (see ``listings.product``).

Notice periods are counted in calendar days from the day the notice opens: with ``days`` = 7
opening on 1 March, objections may be filed 1–7 March and the code may be assigned from 8 March.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from listings.codes import UnifiedCode
from listings.domains import DataDomain, Grade, Purpose, SubjectKind, UpdateCycle, Vocabulary
from listings.errors import (
    DomainRuleError,
    DomainValueError,
    InvalidTransitionError,
    require_date,
    require_member,
    require_text,
)

MAX_NAME_LENGTH = 200
MAX_TITLE_LENGTH = 100
MAX_LONG_TEXT_LENGTH = 4000
MAX_NOTICE_PERIOD_DAYS = 90


class RegistrationKind(Vocabulary):
    FIRST = "first", "首次登记"
    CHANGE = "change", "变更登记"
    CORRECTION = "correction", "更正登记"
    CANCELLATION = "cancellation", "注销登记"


class RegistrationState(Vocabulary):
    APPLIED = "applied", "已申请"
    ACCEPTED = "accepted", "已受理"
    UNDER_REVIEW = "under_review", "形式审查中"
    IN_NOTICE = "in_notice", "公示中"
    REGISTERED = "registered", "已登记赋码"
    REJECTED = "rejected", "不予登记"
    STOPPED = "stopped", "异议成立终止"
    CANCELLED = "cancelled", "已注销"

    @property
    def is_final(self) -> bool:
        return self in {
            RegistrationState.REJECTED,
            RegistrationState.STOPPED,
            RegistrationState.CANCELLED,
        }


class ObjectionState(Vocabulary):
    FILED = "filed", "已提出"
    UPHELD = "upheld", "异议成立"
    DISMISSED = "dismissed", "异议不成立"


_STATES_WITH_NOTICE = frozenset(
    {
        RegistrationState.IN_NOTICE,
        RegistrationState.REGISTERED,
        RegistrationState.STOPPED,
        RegistrationState.CANCELLED,
    }
)
_STATES_WITH_CODE = frozenset({RegistrationState.REGISTERED, RegistrationState.CANCELLED})


@dataclass(frozen=True)
class RegistrationData:
    """What is registered (登记信息).

    Holder, data source, domain, update cycle, usage permissions, security measures and grade.
    """

    subject_kind: SubjectKind
    holder: str
    title: str
    description: str
    data_source: str
    domain: DataDomain
    update_cycle: UpdateCycle
    permitted_purposes: frozenset[Purpose]
    security_measures: str
    grade: Grade

    def __post_init__(self) -> None:
        require_member("data.subject_kind", self.subject_kind, SubjectKind)
        _set_text(self, "holder", "data.holder", max_length=MAX_NAME_LENGTH)
        _set_text(self, "title", "data.title", max_length=MAX_TITLE_LENGTH)
        _set_text(
            self, "description", "data.description", max_length=MAX_LONG_TEXT_LENGTH, multiline=True
        )
        _set_text(
            self, "data_source", "data.data_source", max_length=MAX_LONG_TEXT_LENGTH, multiline=True
        )
        require_member("data.domain", self.domain, DataDomain)
        require_member("data.update_cycle", self.update_cycle, UpdateCycle)
        purposes = frozenset(self.permitted_purposes)
        if not purposes:
            raise DomainValueError("data.permitted_purposes", "at least one purpose is required")
        for purpose in purposes:
            require_member("data.permitted_purposes", purpose, Purpose)
        object.__setattr__(self, "permitted_purposes", purposes)
        _set_text(
            self,
            "security_measures",
            "data.security_measures",
            max_length=MAX_LONG_TEXT_LENGTH,
            multiline=True,
        )
        require_member("data.grade", self.grade, Grade)
        if self.grade is Grade.CORE and self.subject_kind is not SubjectKind.RESOURCE:
            raise DomainRuleError(
                "data.grade",
                f"core data is never traded: a {self.subject_kind.value} graded core "
                "cannot be registered",
            )


@dataclass(frozen=True)
class Objection:
    """An objection (异议) raised during the notice; numbered from 1 within its registration."""

    number: int
    objector: str
    grounds: str
    filed_on: date
    state: ObjectionState = ObjectionState.FILED
    resolution: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.number, bool) or not isinstance(self.number, int) or self.number < 1:
            raise DomainValueError("objection.number", f"{self.number!r} is not a number from 1")
        _set_text(self, "objector", "objector", max_length=MAX_NAME_LENGTH)
        _set_text(self, "grounds", "grounds", max_length=MAX_LONG_TEXT_LENGTH, multiline=True)
        require_date("filed_on", self.filed_on)
        require_member("objection.state", self.state, ObjectionState)
        if self.state is not ObjectionState.FILED or self.resolution:
            _set_text(
                self, "resolution", "resolution", max_length=MAX_LONG_TEXT_LENGTH, multiline=True
            )


@dataclass(frozen=True)
class NoticePeriod:
    """Public notice (公示): ``days`` calendar days from ``starts_on`` inclusive."""

    starts_on: date
    days: int

    def __post_init__(self) -> None:
        require_date("notice.starts_on", self.starts_on)
        if isinstance(self.days, bool) or not isinstance(self.days, int):
            raise DomainValueError("notice_period_days", f"{self.days!r} is not a whole number")
        if not 1 <= self.days <= MAX_NOTICE_PERIOD_DAYS:
            raise DomainValueError(
                "notice_period_days", f"must be 1–{MAX_NOTICE_PERIOD_DAYS} days, not {self.days}"
            )

    @property
    def ends_on(self) -> date:
        """The first day after the notice: the earliest day a code may be assigned."""
        return self.starts_on + timedelta(days=self.days)

    def is_open(self, day: date) -> bool:
        return self.starts_on <= day < self.ends_on

    def has_ended(self, day: date) -> bool:
        return day >= self.ends_on


@dataclass(frozen=True)
class Registration:
    """One registration application and where it stands.

    ``target_code`` is the code a change, correction or cancellation refers to; ``statement``
    says why it is made. ``code`` is set once registered.
    """

    kind: RegistrationKind
    data: RegistrationData
    applied_on: date
    target_code: UnifiedCode | None = None
    statement: str = ""
    state: RegistrationState = RegistrationState.APPLIED
    notice: NoticePeriod | None = None
    objections: tuple[Objection, ...] = ()
    rejection_reasons: tuple[str, ...] = ()
    code: UnifiedCode | None = None
    registered_on: date | None = None

    def __post_init__(self) -> None:
        require_member("kind", self.kind, RegistrationKind)
        if not isinstance(self.data, RegistrationData):
            raise DomainValueError("data", "expected RegistrationData")
        require_date("applied_on", self.applied_on)
        self._check_reference()
        self._check_state_consistency()

    def _check_reference(self) -> None:
        if self.kind is RegistrationKind.FIRST:
            if self.target_code is not None:
                raise DomainRuleError("target_code", "a first registration refers to no code")
        else:
            if not isinstance(self.target_code, UnifiedCode):
                raise DomainRuleError(
                    "target_code", f"a {self.kind.value} registration must refer to a code"
                )
            if self.target_code.kind is not self.data.subject_kind:
                raise DomainRuleError(
                    "target_code",
                    f"{self.target_code} is a {self.target_code.kind.value} code but this "
                    f"registration is about a {self.data.subject_kind.value}",
                )
            _set_text(
                self, "statement", "statement", max_length=MAX_LONG_TEXT_LENGTH, multiline=True
            )

    def _check_state_consistency(self) -> None:
        require_member("state", self.state, RegistrationState)
        object.__setattr__(self, "objections", tuple(self.objections))
        object.__setattr__(self, "rejection_reasons", tuple(self.rejection_reasons))
        for objection in self.objections:
            require_member("objections", objection, Objection)
        if (self.notice is not None) != (self.state in _STATES_WITH_NOTICE):
            raise DomainRuleError("notice", f"inconsistent with state {self.state.value}")
        numbers = [objection.number for objection in self.objections]
        if numbers != list(range(1, len(numbers) + 1)):
            raise DomainRuleError("objections", "objections must be numbered 1, 2, 3 … in order")
        upheld = any(o.state is ObjectionState.UPHELD for o in self.objections)
        if upheld != (self.state is RegistrationState.STOPPED):
            raise DomainRuleError(
                "objections", "a registration is stopped exactly when an objection was upheld"
            )
        if (self.state is RegistrationState.REJECTED) != bool(self.rejection_reasons):
            raise DomainRuleError(
                "rejection_reasons", "a registration has reasons exactly when it is rejected"
            )
        if (self.code is None) != (self.registered_on is None):
            raise DomainRuleError("registered_on", "set exactly when a code is assigned")
        if (self.code is not None) != (self.state in _STATES_WITH_CODE):
            raise DomainRuleError("code", f"inconsistent with state {self.state.value}")
        if self.code is not None:
            require_date("registered_on", self.registered_on)
            _check_code_matches(self, self.code)

    def open_objections(self) -> tuple[Objection, ...]:
        return tuple(o for o in self.objections if o.state is ObjectionState.FILED)


def _check_code_matches(registration: Registration, code: UnifiedCode) -> None:
    if registration.kind is not RegistrationKind.FIRST and code != registration.target_code:
        raise DomainRuleError(
            "code", f"a {registration.kind.value} registration keeps its target code"
        )
    if code.kind is not registration.data.subject_kind:
        raise DomainRuleError(
            "code",
            f"{code} is a {code.kind.value} code but the subject is a "
            f"{registration.data.subject_kind.value}",
        )


def _set_text(
    instance: object, attribute: str, field: str, *, max_length: int, multiline: bool = False
) -> None:
    # Frozen dataclasses store the stripped text; object.__setattr__ is the documented way
    # to normalise a field inside __post_init__.
    text = require_text(
        field, getattr(instance, attribute), max_length=max_length, multiline=multiline
    )
    object.__setattr__(instance, attribute, text)


def _require_state(registration: Registration, action: str, *allowed: RegistrationState) -> None:
    if registration.state not in allowed:
        raise InvalidTransitionError(
            "state", f"cannot {action} a registration that is {registration.state.value}"
        )


def _notice_of(registration: Registration) -> NoticePeriod:
    # Registration.__post_init__ guarantees an in-notice registration has its notice period;
    # this only narrows the Optional for the type checker without relying on assert.
    if registration.notice is None:
        raise DomainRuleError("notice", f"a {registration.state.value} registration has no notice")
    return registration.notice


def _check_target(
    kind: RegistrationKind, data: RegistrationData, target: Registration
) -> UnifiedCode:
    """The target's code, if a ``kind`` registration of ``data`` may refer to ``target``."""
    if target.state is not RegistrationState.REGISTERED or target.code is None:
        raise DomainRuleError(
            "target_code",
            f"a {kind.value} registration must refer to a registered code; "
            f"the target is {target.state.value}",
        )
    if target.data.subject_kind is not data.subject_kind:
        raise DomainRuleError(
            "data.subject_kind",
            f"{target.code} registers a {target.data.subject_kind.value}, "
            f"not a {data.subject_kind.value}",
        )
    if target.data.holder != data.holder:
        raise DomainRuleError(
            "data.holder", f"{target.code} is held by {target.data.holder!r}, not {data.holder!r}"
        )
    return target.code


def apply_first(data: RegistrationData, *, applied_on: date) -> Registration:
    """A first registration (首次登记) application."""
    return Registration(kind=RegistrationKind.FIRST, data=data, applied_on=applied_on)


def apply_amendment(
    kind: RegistrationKind,
    data: RegistrationData,
    *,
    target: Registration,
    statement: str,
    applied_on: date,
) -> Registration:
    """A change (变更) or correction (更正) of the registered ``target``, with the new data."""
    if kind not in {RegistrationKind.CHANGE, RegistrationKind.CORRECTION}:
        raise DomainValueError("kind", f"an amendment is a change or a correction, not {kind!r}")
    return Registration(
        kind=kind,
        data=data,
        applied_on=applied_on,
        target_code=_check_target(kind, data, target),
        statement=statement,
    )


def apply_cancellation(target: Registration, *, statement: str, applied_on: date) -> Registration:
    """A cancellation (注销登记) of the registered ``target``'s code; it repeats its data."""
    return Registration(
        kind=RegistrationKind.CANCELLATION,
        data=target.data,
        applied_on=applied_on,
        target_code=_check_target(RegistrationKind.CANCELLATION, target.data, target),
        statement=statement,
    )


def accept(registration: Registration) -> Registration:
    """applied → accepted (受理)."""
    _require_state(registration, "accept", RegistrationState.APPLIED)
    return dataclasses.replace(registration, state=RegistrationState.ACCEPTED)


def start_review(registration: Registration) -> Registration:
    """accepted → under_review (形式审查)."""
    _require_state(registration, "start reviewing", RegistrationState.ACCEPTED)
    return dataclasses.replace(registration, state=RegistrationState.UNDER_REVIEW)


def reject(registration: Registration, *, reasons: Iterable[str]) -> Registration:
    """applied (not accepted) or under_review (failed review) → rejected, with reasons."""
    _require_state(
        registration, "reject", RegistrationState.APPLIED, RegistrationState.UNDER_REVIEW
    )
    checked = tuple(
        require_text(f"reasons[{index}]", reason, max_length=MAX_LONG_TEXT_LENGTH)
        for index, reason in enumerate(reasons)
    )
    if not checked:
        raise DomainValueError("reasons", "a rejection must give at least one reason")
    return dataclasses.replace(
        registration, state=RegistrationState.REJECTED, rejection_reasons=checked
    )


def open_notice(registration: Registration, *, on: date, notice_period_days: int) -> Registration:
    """under_review → in_notice: the review passed and the public notice (公示) opens ``on``."""
    _require_state(registration, "open the notice of", RegistrationState.UNDER_REVIEW)
    notice = NoticePeriod(starts_on=on, days=notice_period_days)
    return dataclasses.replace(registration, state=RegistrationState.IN_NOTICE, notice=notice)


def file_objection(
    registration: Registration, *, objector: str, grounds: str, on: date
) -> Registration:
    """Add an objection; only while in notice and within the notice period."""
    _require_state(registration, "object to", RegistrationState.IN_NOTICE)
    notice = _notice_of(registration)
    if not notice.is_open(on):
        raise DomainRuleError(
            "filed_on",
            f"objections may be filed from {notice.starts_on} until the day "
            f"before {notice.ends_on}, not on {on}",
        )
    objection = Objection(
        number=len(registration.objections) + 1, objector=objector, grounds=grounds, filed_on=on
    )
    return dataclasses.replace(registration, objections=(*registration.objections, objection))


def _resolve_objection(
    registration: Registration, number: int, outcome: ObjectionState, resolution: str
) -> Registration:
    _require_state(registration, "resolve an objection to", RegistrationState.IN_NOTICE)
    if not 1 <= number <= len(registration.objections):
        raise DomainValueError("objection_number", f"there is no objection #{number}")
    objection = registration.objections[number - 1]
    if objection.state is not ObjectionState.FILED:
        raise InvalidTransitionError(
            "objection.state", f"objection #{number} is already {objection.state.value}"
        )
    resolved = dataclasses.replace(objection, state=outcome, resolution=resolution)
    objections = tuple(resolved if o.number == number else o for o in registration.objections)
    state = RegistrationState.STOPPED if outcome is ObjectionState.UPHELD else registration.state
    return dataclasses.replace(registration, objections=objections, state=state)


def uphold_objection(registration: Registration, *, number: int, resolution: str) -> Registration:
    """The objection is upheld (异议成立): the registration stops."""
    return _resolve_objection(registration, number, ObjectionState.UPHELD, resolution)


def dismiss_objection(registration: Registration, *, number: int, resolution: str) -> Registration:
    """The objection is dismissed (异议不成立): the registration may proceed."""
    return _resolve_objection(registration, number, ObjectionState.DISMISSED, resolution)


def register(
    registration: Registration,
    *,
    on: date,
    new_code: UnifiedCode | None = None,
    target: Registration | None = None,
) -> Registration:
    """in_notice → registered (赋码), once the notice is over with no open objection.

    A first registration takes ``new_code`` (the next serial, issued for the year ``on`` falls
    in). A change, correction or cancellation takes no new code; pass its ``target`` as it
    stands now, which must still be registered under the referred code.
    """
    _require_state(registration, "register", RegistrationState.IN_NOTICE)
    notice = _notice_of(registration)
    if not notice.has_ended(on):
        raise DomainRuleError(
            "notice",
            f"the notice runs until the day before {notice.ends_on}; "
            f"no code can be assigned on {on}",
        )
    still_open = registration.open_objections()
    if still_open:
        numbers = ", ".join(f"#{o.number}" for o in still_open)
        raise DomainRuleError("objections", f"objections {numbers} are still open")
    if registration.kind is RegistrationKind.FIRST:
        if new_code is None:
            raise DomainValueError("new_code", "a first registration needs a new code")
        if new_code.kind is not registration.data.subject_kind:
            raise DomainRuleError(
                "new_code",
                f"{new_code} is a {new_code.kind.value} code but the subject is a "
                f"{registration.data.subject_kind.value}",
            )
        if new_code.year != on.year:
            raise DomainRuleError(
                "new_code",
                f"{new_code} carries year {new_code.year}, but it is assigned in {on.year}",
            )
        code = new_code
    else:
        if new_code is not None:
            raise DomainRuleError(
                "new_code", f"a {registration.kind.value} registration keeps its target code"
            )
        if target is None or target.code != registration.target_code:
            raise DomainRuleError(
                "target_code", f"the registration holding {registration.target_code} is required"
            )
        code = _check_target(registration.kind, registration.data, target)
    return dataclasses.replace(
        registration, state=RegistrationState.REGISTERED, code=code, registered_on=on
    )


def mark_cancelled(registration: Registration, *, cancellation: Registration) -> Registration:
    """registered → cancelled, because the registered ``cancellation`` cancelled its code."""
    _require_state(registration, "cancel", RegistrationState.REGISTERED)
    if (
        cancellation.kind is not RegistrationKind.CANCELLATION
        or cancellation.state is not RegistrationState.REGISTERED
    ):
        raise DomainRuleError(
            "cancellation", "only a registered cancellation registration cancels a code"
        )
    if cancellation.target_code != registration.code:
        raise DomainRuleError(
            "cancellation",
            f"the cancellation is for {cancellation.target_code}, not {registration.code}",
        )
    return dataclasses.replace(registration, state=RegistrationState.CANCELLED)
