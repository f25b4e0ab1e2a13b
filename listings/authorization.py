"""Authorized operation (授权运营, MISSION §1): scope, covered resources, term, exit mechanism.

An authorizing body grants an operator the right to operate public data within a scope, over
listed resources (by unified registration code), for a term, under conditions. The exit
mechanism (退出机制) is the state machine::

    active ──suspend──▶ suspended ──reinstate──▶ active
    active | suspended ──revoke──▶ revoked   (final)
    active | suspended ──expire──▶ expired   (final; only once the term has ended)

Every transition records a non-empty reason, because suspensions, revocations and expiries are
published (信息披露, MISSION §9). Nothing may be listed outside an active authorization that is in
term: ``Authorization.covers`` says whether a product fits and, if not, every reason why.

Terms are inclusive calendar dates, as authorization agreements state them ("自…起至…止"): an
authorization is in term on ``start`` and on ``end`` and has ended from the day after ``end``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from listings.codes import UnifiedCode, resource_code_set
from listings.domains import DataDomain, ScopeKind, Vocabulary
from listings.errors import (
    DomainRuleError,
    DomainValueError,
    InvalidTransitionError,
    require_date,
    require_text,
)

MAX_SCENARIO_LENGTH = 100
MAX_CONDITIONS_LENGTH = 4000
MAX_REASON_LENGTH = 1000


class AuthorizationState(Vocabulary):
    ACTIVE = "active", "有效"
    SUSPENDED = "suspended", "暂停"
    REVOKED = "revoked", "撤销"
    EXPIRED = "expired", "到期终止"

    @property
    def is_final(self) -> bool:
        return self in {AuthorizationState.REVOKED, AuthorizationState.EXPIRED}

    @property
    def is_in_force(self) -> bool:
        """Active or suspended: the grant still exists and still blocks overlapping grants."""
        return not self.is_final


@dataclass(frozen=True)
class Term:
    """Operating term (运营期限): inclusive first and last day; ``end`` must be after ``start``."""

    start: date
    end: date

    def __post_init__(self) -> None:
        require_date("term.start", self.start)
        require_date("term.end", self.end)
        if self.end <= self.start:
            raise DomainRuleError(
                "term.end", f"the term must end after it starts ({self.start} … {self.end})"
            )

    def includes(self, day: date) -> bool:
        return self.start <= day <= self.end

    def has_ended(self, day: date) -> bool:
        return day > self.end

    def overlaps(self, other: Term) -> bool:
        return self.start <= other.end and other.start <= self.end


@dataclass(frozen=True)
class Scope:
    """Scope of an authorization (授权范围).

    ``whole`` covers every domain and lists none; ``domain`` covers the listed domains;
    ``scenario`` covers the listed domains only for the named application scenarios (应用场景).
    """

    kind: ScopeKind
    domains: frozenset[DataDomain] = frozenset()
    scenarios: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not isinstance(self.kind, ScopeKind):
            raise DomainValueError("scope.kind", f"{self.kind!r} is not a scope kind")
        if not all(isinstance(domain, DataDomain) for domain in self.domains):
            raise DomainValueError("scope.domains", "every entry must be a data domain")
        object.__setattr__(self, "domains", frozenset(self.domains))
        scenarios = frozenset(
            require_text("scope.scenarios", scenario, max_length=MAX_SCENARIO_LENGTH)
            for scenario in self.scenarios
        )
        object.__setattr__(self, "scenarios", scenarios)
        if self.kind is ScopeKind.WHOLE and self.domains:
            raise DomainRuleError(
                "scope.domains", "a whole-scope authorization covers every domain; list none"
            )
        if self.kind is not ScopeKind.WHOLE and not self.domains:
            raise DomainRuleError(
                "scope.domains", f"a {self.kind.value}-scope authorization must list its domains"
            )
        if self.kind is ScopeKind.SCENARIO and not self.scenarios:
            raise DomainRuleError(
                "scope.scenarios", "a scenario-scope authorization must name its scenarios"
            )
        if self.kind is not ScopeKind.SCENARIO and self.scenarios:
            raise DomainRuleError(
                "scope.scenarios", f"a {self.kind.value}-scope authorization names no scenarios"
            )

    def covers_domain(self, domain: DataDomain) -> bool:
        return self.kind is ScopeKind.WHOLE or domain in self.domains

    def covers_scenario(self, scenario: str | None) -> bool:
        """Only a scenario scope restricts scenarios; it then requires one of its own."""
        if self.kind is not ScopeKind.SCENARIO:
            return True
        return scenario is not None and scenario.strip() in self.scenarios

    def overlaps(self, other: Scope) -> bool:
        """Whether some (domain, scenario) use would fall under both scopes."""
        if ScopeKind.WHOLE in {self.kind, other.kind}:
            return True
        if not self.domains & other.domains:
            return False
        if self.kind is ScopeKind.SCENARIO and other.kind is ScopeKind.SCENARIO:
            return bool(self.scenarios & other.scenarios)
        return True


class CoverageReason(Vocabulary):
    NOT_ACTIVE = "authorization_not_active", "授权非有效状态"
    OUT_OF_TERM = "authorization_out_of_term", "不在授权期限内"
    DOMAIN_OUTSIDE_SCOPE = "domain_outside_scope", "领域超出授权范围"
    SCENARIO_OUTSIDE_SCOPE = "scenario_outside_scope", "场景超出授权范围"
    RESOURCE_NOT_COVERED = "resource_not_covered", "数据资源未获授权"


@dataclass(frozen=True)
class CoverageGap:
    """One reason an authorization does not cover a use; ``field`` names the offending input."""

    reason: CoverageReason
    field: str
    message: str


@dataclass(frozen=True)
class CoverageResult:
    gaps: tuple[CoverageGap, ...]

    @property
    def covered(self) -> bool:
        return not self.gaps

    def __bool__(self) -> bool:
        return self.covered


@dataclass(frozen=True)
class Authorization:
    """An operator's authorization; ``state_reason`` explains the latest transition."""

    operator_id: str
    scope: Scope
    resource_codes: frozenset[UnifiedCode]
    term: Term
    conditions: str
    state: AuthorizationState = AuthorizationState.ACTIVE
    state_reason: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "operator_id", require_text("operator_id", self.operator_id, max_length=200)
        )
        if not isinstance(self.scope, Scope):
            raise DomainValueError("scope", "expected a Scope")
        if not isinstance(self.term, Term):
            raise DomainValueError("term", "expected a Term")
        object.__setattr__(
            self, "resource_codes", resource_code_set("resource_codes", self.resource_codes)
        )
        object.__setattr__(
            self,
            "conditions",
            require_text(
                "conditions", self.conditions, max_length=MAX_CONDITIONS_LENGTH, multiline=True
            ),
        )
        if not isinstance(self.state, AuthorizationState):
            raise DomainValueError("state", f"{self.state!r} is not an authorization state")
        if self.state is not AuthorizationState.ACTIVE or self.state_reason:
            object.__setattr__(
                self,
                "state_reason",
                require_text("state_reason", self.state_reason, max_length=MAX_REASON_LENGTH),
            )

    def covers(
        self,
        domain: DataDomain,
        resource_codes: Iterable[UnifiedCode],
        on: date,
        scenario: str | None = None,
    ) -> CoverageResult:
        """Whether a use in ``domain`` (and ``scenario``) of ``resource_codes`` on day ``on`` is
        covered; every gap found is reported, not just the first."""
        gaps: list[CoverageGap] = []
        if self.state is not AuthorizationState.ACTIVE:
            gaps.append(
                CoverageGap(
                    CoverageReason.NOT_ACTIVE,
                    "authorization.state",
                    f"the authorization is {self.state.value}: {self.state_reason}",
                )
            )
        if not self.term.includes(on):
            gaps.append(
                CoverageGap(
                    CoverageReason.OUT_OF_TERM,
                    "authorization.term",
                    f"{on} is outside the term {self.term.start} … {self.term.end}",
                )
            )
        if not self.scope.covers_domain(domain):
            gaps.append(
                CoverageGap(
                    CoverageReason.DOMAIN_OUTSIDE_SCOPE,
                    "domain",
                    f"{domain.value} ({domain.label}) is outside the authorized domains",
                )
            )
        if not self.scope.covers_scenario(scenario):
            gaps.append(
                CoverageGap(
                    CoverageReason.SCENARIO_OUTSIDE_SCOPE,
                    "scenario",
                    f"scenario {scenario!r} is not one of the authorized scenarios",
                )
            )
        gaps.extend(
            CoverageGap(
                CoverageReason.RESOURCE_NOT_COVERED,
                "source_resource_codes",
                f"resource {code} is not covered by the authorization",
            )
            for code in sorted(set(resource_codes) - self.resource_codes)
        )
        return CoverageResult(tuple(gaps))


def _transition(
    authorization: Authorization,
    action: str,
    allowed_from: frozenset[AuthorizationState],
    target: AuthorizationState,
    reason: str,
) -> Authorization:
    if authorization.state not in allowed_from:
        raise InvalidTransitionError(
            "state", f"cannot {action} an authorization that is {authorization.state.value}"
        )
    checked_reason = require_text("reason", reason, max_length=MAX_REASON_LENGTH)
    return dataclasses.replace(authorization, state=target, state_reason=checked_reason)


_IN_FORCE = frozenset({AuthorizationState.ACTIVE, AuthorizationState.SUSPENDED})


def suspend(authorization: Authorization, *, reason: str) -> Authorization:
    """active → suspended (暂停)."""
    return _transition(
        authorization,
        "suspend",
        frozenset({AuthorizationState.ACTIVE}),
        AuthorizationState.SUSPENDED,
        reason,
    )


def reinstate(authorization: Authorization, *, reason: str, on: date) -> Authorization:
    """suspended → active; refused once the term has ended (the grant must expire instead)."""
    if authorization.state is AuthorizationState.SUSPENDED and authorization.term.has_ended(on):
        raise DomainRuleError(
            "term.end", f"the term ended on {authorization.term.end}; it cannot be reinstated"
        )
    return _transition(
        authorization,
        "reinstate",
        frozenset({AuthorizationState.SUSPENDED}),
        AuthorizationState.ACTIVE,
        reason,
    )


def revoke(authorization: Authorization, *, reason: str) -> Authorization:
    """active | suspended → revoked (撤销), final."""
    return _transition(authorization, "revoke", _IN_FORCE, AuthorizationState.REVOKED, reason)


def expire(authorization: Authorization, *, reason: str, on: date) -> Authorization:
    """active | suspended → expired (到期终止), final; only after the last day of the term."""
    if authorization.state in _IN_FORCE and not authorization.term.has_ended(on):
        raise DomainRuleError(
            "term.end", f"the term runs until {authorization.term.end}; it has not ended on {on}"
        )
    return _transition(authorization, "expire", _IN_FORCE, AuthorizationState.EXPIRED, reason)


def validate_new_term(term: Term, today: date) -> None:
    """A newly granted term may start today or later, never in the past."""
    if term.start < today:
        raise DomainRuleError("term.start", f"a new term must not start in the past ({term.start})")


def find_conflict(
    candidate: Authorization, existing: Iterable[Authorization]
) -> Authorization | None:
    """The first in-force authorization of the same operator whose term and scope both overlap
    ``candidate``'s, or ``None``. Two grants over the same ground would leave it unclear which
    term, conditions and exit decision govern a listing."""
    for other in existing:
        if (
            other.operator_id == candidate.operator_id
            and other.state.is_in_force
            and other.term.overlaps(candidate.term)
            and other.scope.overlaps(candidate.scope)
        ):
            return other
    return None


def grant(
    *,
    operator_id: str,
    scope: Scope,
    resource_codes: Iterable[UnifiedCode],
    term: Term,
    conditions: str,
    today: date,
    existing: Iterable[Authorization],
) -> Authorization:
    """A new active authorization, after checking its term is not in the past and does not
    overlap an in-force authorization of the same operator for an overlapping scope."""
    candidate = Authorization(
        operator_id=operator_id,
        scope=scope,
        resource_codes=frozenset(resource_codes),
        term=term,
        conditions=conditions,
    )
    validate_new_term(candidate.term, today)
    conflict = find_conflict(candidate, existing)
    if conflict is not None:
        raise DomainRuleError(
            "term",
            f"overlaps the {conflict.state.value} {conflict.scope.kind.value}-scope authorization "
            f"for {conflict.term.start} … {conflict.term.end} of the same operator",
        )
    return candidate
