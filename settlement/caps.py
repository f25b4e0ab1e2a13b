"""Government-guided pricing (价格形成机制, MISSION §6).

- Use for public governance or public welfare is free under conditions (有条件无偿): a buyer gets
  it only with an eligibility grant that staff recorded with evidence and a term.
- Use for industry development is paid (有条件有偿), at or below the upper-limit fee
  (上限收费标准) that the authorizing body set per product, purpose and charging unit. Caps are
  versioned by effective dates; two versions of one cap may never be in force on the same day.
- The pricing authority approves each operator's maximum permitted revenue (最高准许收入 =
  operating cost + permitted profit + tax) per period; revenue above the maximum in one period
  is deducted from the next period's maximum.

Date ranges here are closed: ``effective_to`` / ``valid_to`` / ``last_day`` is the last day on
which the rule applies, matching how the authorities' documents state terms ("执行至…").
Days are calendar days in the exchange's configured zone; ``local_day`` converts an instant.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from settlement.errors import (
    CapVersionOverlapError,
    IneligibleForFreeUseError,
    InvalidMoneyError,
    InvalidPolicyError,
    OverCapError,
)
from settlement.money import Money


class Purpose(StrEnum):
    """What the buyer will use the data for; decides whether the use is free or paid."""

    PUBLIC_GOVERNANCE = "public_governance"
    PUBLIC_WELFARE = "public_welfare"
    INDUSTRY_DEVELOPMENT = "industry_development"

    @property
    def is_free(self) -> bool:
        return self in FREE_PURPOSES


FREE_PURPOSES = frozenset({Purpose.PUBLIC_GOVERNANCE, Purpose.PUBLIC_WELFARE})


class ChargingUnit(StrEnum):
    """What one unit of price buys (MISSION §6: per product, per call, per period, per volume)."""

    PER_PRODUCT = "per_product"
    PER_CALL = "per_call"
    PER_PERIOD = "per_period"
    PER_VOLUME = "per_volume"


def local_day(instant: datetime, zone: ZoneInfo) -> date:
    """The calendar day of ``instant`` in the exchange's zone; naive datetimes are refused."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise InvalidPolicyError("instant must be timezone-aware", field="instant")
    return instant.astimezone(zone).date()


def _require_not_negative(amount: Money, *, field: str) -> None:
    if amount.is_negative:
        raise InvalidMoneyError(f"{field} must not be negative", field=field)


def _check_closed_range(first: date, last: date | None, *, field: str) -> None:
    if last is not None and last < first:
        raise InvalidPolicyError(f"{field} {last} is before the start {first}", field=field)


# --- upper-limit fees ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FeeCap:
    """One version of an upper-limit fee, in force from ``effective_from`` to ``effective_to``
    inclusive (``None``: until superseded)."""

    product_id: str
    purpose: Purpose
    unit: ChargingUnit
    cap: Money
    effective_from: date
    effective_to: date | None = None

    def __post_init__(self) -> None:
        if not self.product_id:
            raise InvalidPolicyError("product_id must not be empty", field="product_id")
        if self.purpose.is_free:
            # Free purposes are charged nothing at all; a cap would imply a fee may be charged.
            raise InvalidPolicyError(
                f"{self.purpose} use is free; fee caps apply to paid purposes only",
                field="purpose",
            )
        _require_not_negative(self.cap, field="cap")
        _check_closed_range(self.effective_from, self.effective_to, field="effective_to")

    @property
    def key(self) -> tuple[str, Purpose, ChargingUnit]:
        return (self.product_id, self.purpose, self.unit)

    def in_force_on(self, day: date) -> bool:
        return self.effective_from <= day and (
            self.effective_to is None or day <= self.effective_to
        )

    def overlaps(self, other: FeeCap) -> bool:
        ends_before_other_starts = self.effective_to is not None and (
            self.effective_to < other.effective_from
        )
        starts_after_other_ends = other.effective_to is not None and (
            other.effective_to < self.effective_from
        )
        return not (ends_before_other_starts or starts_after_other_ends)

    def ending_on(self, last_day: date) -> FeeCap:
        """This version closed on ``last_day``, so that a successor can start the day after."""
        if self.effective_to is not None and last_day > self.effective_to:
            raise InvalidPolicyError(
                f"cannot extend a cap that ends on {self.effective_to}; add a new version",
                field="effective_to",
            )
        return replace(self, effective_to=last_day)


def validate_new_cap_version(existing: Iterable[FeeCap], new: FeeCap) -> None:
    """Raise CapVersionOverlapError if ``new`` would be in force on a day that another version of
    the same cap (same product, purpose and unit) already covers."""
    for version in existing:
        if version.key == new.key and version.overlaps(new):
            raise CapVersionOverlapError(
                f"cap for {new.product_id}/{new.purpose}/{new.unit} from {new.effective_from} "
                f"overlaps the version in force from {version.effective_from} "
                f"to {version.effective_to or 'open end'}",
                field="effective_from",
            )


def cap_in_force(
    caps: Iterable[FeeCap], product_id: str, purpose: Purpose, unit: ChargingUnit, on: date
) -> FeeCap | None:
    """The version of the cap for (product, purpose, unit) in force on ``on``, or None.

    Stored versions are validated not to overlap; if they do anyway, picking one would price an
    order on a guess, so the overlap is reported instead.
    """
    matching = [
        cap for cap in caps if cap.key == (product_id, purpose, unit) and cap.in_force_on(on)
    ]
    if len(matching) > 1:
        raise CapVersionOverlapError(
            f"{len(matching)} versions of the cap for {product_id}/{purpose}/{unit} are in force "
            f"on {on}",
            field="effective_from",
        )
    return matching[0] if matching else None


def check_price_under_cap(price: Money, cap: FeeCap) -> None:
    """The operator charges at or below the upper-limit fee (MISSION §6)."""
    _require_not_negative(price, field="price_minor")
    price.require_same_currency(cap.cap)
    if price > cap.cap:
        raise OverCapError(
            f"price {price.amount_minor} exceeds the approved cap {cap.cap.amount_minor} "
            f"{cap.cap.currency} for {cap.product_id}/{cap.purpose}/{cap.unit}",
            field="price_minor",
        )


# --- periods and maximum permitted revenue -----------------------------------------------------


class PeriodGranularity(StrEnum):
    YEAR = "year"
    MONTH = "month"


_PERIOD_LABEL = re.compile(r"(?P<year>\d{4})(?:-(?P<month>\d{2}))?")


@dataclass(frozen=True, slots=True)
class RevenuePeriod:
    """A year ("2026") or a month ("2026-11") in the exchange's zone."""

    label: str

    def __post_init__(self) -> None:
        match = _PERIOD_LABEL.fullmatch(self.label)
        if (
            match is None
            or int(match["year"]) < 1
            or (match["month"] is not None and not 1 <= int(match["month"]) <= 12)
        ):
            raise InvalidPolicyError(
                f"period must be a year 'YYYY' or a month 'YYYY-MM', got {self.label!r}",
                field="period",
            )

    @classmethod
    def containing(cls, day: date, granularity: PeriodGranularity) -> RevenuePeriod:
        if granularity is PeriodGranularity.YEAR:
            return cls(f"{day.year:04d}")
        return cls(f"{day.year:04d}-{day.month:02d}")

    @property
    def granularity(self) -> PeriodGranularity:
        return PeriodGranularity.YEAR if len(self.label) == 4 else PeriodGranularity.MONTH

    @property
    def _year(self) -> int:
        return int(self.label[:4])

    @property
    def first_day(self) -> date:
        if self.granularity is PeriodGranularity.YEAR:
            return date(self._year, 1, 1)
        return date(self._year, int(self.label[5:]), 1)

    @property
    def last_day(self) -> date:
        if self.granularity is PeriodGranularity.YEAR:
            return date(self._year, 12, 31)
        month = int(self.label[5:])
        return date(self._year, month, calendar.monthrange(self._year, month)[1])

    def contains(self, day: date) -> bool:
        return self.first_day <= day <= self.last_day

    def previous(self) -> RevenuePeriod:
        if self.first_day == date.min:
            raise InvalidPolicyError("no period precedes year 1", field="period")
        return RevenuePeriod.containing(self.first_day - timedelta(days=1), self.granularity)

    def following(self) -> RevenuePeriod:
        if self.last_day == date.max:
            raise InvalidPolicyError("no period follows year 9999", field="period")
        return RevenuePeriod.containing(self.last_day + timedelta(days=1), self.granularity)

    def utc_bounds(self, zone: ZoneInfo) -> tuple[datetime, datetime]:
        """Half-open ``[start, end)`` instants of this period in ``zone``, for stored UTC times."""
        if self.last_day == date.max:
            raise InvalidPolicyError("year 9999 has no end instant", field="period")
        start = datetime.combine(self.first_day, time.min, tzinfo=zone)
        end = datetime.combine(self.last_day + timedelta(days=1), time.min, tzinfo=zone)
        return start.astimezone(UTC), end.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class RevenueCeiling:
    """An operator's maximum permitted revenue (最高准许收入) for one period, as approved."""

    operator_id: str
    period: RevenuePeriod
    operating_cost: Money
    permitted_profit: Money
    tax: Money

    def __post_init__(self) -> None:
        if not self.operator_id:
            raise InvalidPolicyError("operator_id must not be empty", field="operator_id")
        for field, amount in (
            ("operating_cost", self.operating_cost),
            ("permitted_profit", self.permitted_profit),
            ("tax", self.tax),
        ):
            _require_not_negative(amount, field=field)
            amount.require_same_currency(self.operating_cost, field=field)

    @property
    def approved(self) -> Money:
        """最高准许收入 = operating cost + permitted profit + tax."""
        return self.operating_cost + self.permitted_profit + self.tax


def effective_ceiling(approved: Money, previous_period_excess: Money) -> Money:
    """The ceiling in force after deducting last period's excess revenue; never below zero."""
    _require_not_negative(approved, field="approved")
    _require_not_negative(previous_period_excess, field="previous_period_excess")
    return max(approved - previous_period_excess, Money.zero(approved.currency))


def headroom(effective: Money, committed_revenue: Money) -> Money:
    """How much more revenue fits in the period; zero once the ceiling is reached or passed."""
    _require_not_negative(committed_revenue, field="committed_revenue")
    return max(effective - committed_revenue, Money.zero(effective.currency))


def fits_under_ceiling(effective: Money, committed: Money, additional: Money) -> bool:
    """Whether ``additional`` revenue keeps the period at or under its effective ceiling."""
    _require_not_negative(committed, field="committed_revenue")
    _require_not_negative(additional, field="price_minor")
    return committed + additional <= effective


def excess_revenue(effective: Money, realised: Money) -> Money:
    """Revenue realised above the period's effective ceiling; zero when within it."""
    _require_not_negative(realised, field="realised_revenue")
    return max(realised - effective, Money.zero(effective.currency))


def excess_to_carry_forward(
    approved: Money, previous_period_excess: Money, realised: Money
) -> Money:
    """The excess to deduct from the following period's ceiling when this period closes.

    This period's own excess over its effective ceiling, plus any part of the previous excess
    that this period's ceiling was too small to absorb (the effective ceiling stops at zero):
    an overshoot is deducted in full, never forgiven by a small ceiling in between.
    """
    effective = effective_ceiling(approved, previous_period_excess)
    unabsorbed = max(previous_period_excess - approved, Money.zero(approved.currency))
    return excess_revenue(effective, realised) + unabsorbed


# --- free use ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Eligibility:
    """Staff's grant that a buyer may use data free for the listed purposes, ``valid_from`` to
    ``valid_to`` inclusive, on the strength of ``evidence`` (document reference or description)."""

    buyer_org_id: str
    purposes: frozenset[Purpose]
    valid_from: date
    valid_to: date
    evidence: str

    def __post_init__(self) -> None:
        if not self.buyer_org_id:
            raise InvalidPolicyError("buyer_org_id must not be empty", field="buyer_org_id")
        if not self.purposes:
            raise InvalidPolicyError("an eligibility covers at least one purpose", field="purposes")
        paid = sorted(purpose for purpose in self.purposes if not purpose.is_free)
        if paid:
            raise InvalidPolicyError(
                f"eligibility is for free purposes only; {', '.join(paid)} is paid",
                field="purposes",
            )
        _check_closed_range(self.valid_from, self.valid_to, field="valid_to")
        if not self.evidence.strip():
            raise InvalidPolicyError("eligibility needs evidence", field="evidence")

    def valid_on(self, day: date) -> bool:
        return self.valid_from <= day <= self.valid_to


def check_free_use(
    purpose: Purpose, eligibilities: Iterable[Eligibility], on: date, *, buyer_org_id: str
) -> None:
    """Allow free use of ``purpose`` by ``buyer_org_id`` on ``on``, or raise
    IneligibleForFreeUseError with the most specific reason.

    Grants of other buyers are ignored, so a caller that passes too many cannot grant free use.
    """
    if not purpose.is_free:
        raise IneligibleForFreeUseError(
            f"{purpose} use is paid", field="purpose", reason="purpose_is_paid"
        )
    covering = [
        grant
        for grant in eligibilities
        if grant.buyer_org_id == buyer_org_id and purpose in grant.purposes
    ]
    if any(grant.valid_on(on) for grant in covering):
        return
    if any(grant.valid_from > on for grant in covering):
        reason, detail = "not_yet_valid", "the buyer's eligibility starts later"
    elif covering:
        reason, detail = "expired", "the buyer's eligibility has expired"
    else:
        reason, detail = "not_eligible", "the buyer has no eligibility"
    raise IneligibleForFreeUseError(
        f"free {purpose} use refused on {on}: {detail}", field="purpose", reason=reason
    )
