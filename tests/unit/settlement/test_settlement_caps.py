"""Government-guided pricing: fee cap versions, revenue ceilings with carry-over, free use."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from settlement.caps import (
    ChargingUnit,
    Eligibility,
    FeeCap,
    PeriodGranularity,
    Purpose,
    RevenueCeiling,
    RevenuePeriod,
    cap_in_force,
    check_free_use,
    check_price_under_cap,
    effective_ceiling,
    excess_revenue,
    excess_to_carry_forward,
    fits_under_ceiling,
    headroom,
    local_day,
    validate_new_cap_version,
)
from settlement.errors import (
    CapVersionOverlapError,
    CurrencyMismatchError,
    IneligibleForFreeUseError,
    InvalidMoneyError,
    InvalidPolicyError,
    OverCapError,
)
from settlement.money import Money

SHANGHAI = ZoneInfo("Asia/Shanghai")
INDUSTRY = Purpose.INDUSTRY_DEVELOPMENT


def cny(amount_minor: int) -> Money:
    return Money(amount_minor, "CNY")


def cap(
    amount_minor: int,
    effective_from: date,
    effective_to: date | None = None,
    *,
    product_id: str = "product-1",
    unit: ChargingUnit = ChargingUnit.PER_CALL,
) -> FeeCap:
    return FeeCap(product_id, INDUSTRY, unit, cny(amount_minor), effective_from, effective_to)


# --- fee caps ----------------------------------------------------------------------------------

FIRST_HALF = cap(500, date(2026, 1, 1), date(2026, 6, 30))
SECOND_HALF = cap(450, date(2026, 7, 1))
VERSIONS = [FIRST_HALF, SECOND_HALF]


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2025, 12, 31), None),
        (date(2026, 1, 1), FIRST_HALF),
        (date(2026, 6, 30), FIRST_HALF),
        (date(2026, 7, 1), SECOND_HALF),
        (date(2030, 1, 1), SECOND_HALF),
    ],
)
def test_cap_in_force_on_effective_date_boundaries(day: date, expected: FeeCap | None) -> None:
    assert cap_in_force(VERSIONS, "product-1", INDUSTRY, ChargingUnit.PER_CALL, day) == expected


def test_cap_in_force_matches_product_and_unit() -> None:
    other_unit = cap(900, date(2026, 1, 1), unit=ChargingUnit.PER_PERIOD)
    other_product = cap(800, date(2026, 1, 1), product_id="product-2")
    caps = [*VERSIONS, other_unit, other_product]
    on = date(2026, 3, 1)
    assert cap_in_force(caps, "product-1", INDUSTRY, ChargingUnit.PER_PERIOD, on) == other_unit
    assert cap_in_force(caps, "product-2", INDUSTRY, ChargingUnit.PER_CALL, on) == other_product
    assert cap_in_force(caps, "product-3", INDUSTRY, ChargingUnit.PER_CALL, on) is None


def test_cap_in_force_reports_overlapping_stored_versions_instead_of_guessing() -> None:
    overlapping = [*VERSIONS, cap(300, date(2026, 6, 1), date(2026, 6, 30))]
    with pytest.raises(CapVersionOverlapError):
        cap_in_force(overlapping, "product-1", INDUSTRY, ChargingUnit.PER_CALL, date(2026, 6, 15))


@pytest.mark.parametrize(
    "new",
    [
        cap(400, date(2026, 6, 30)),  # shares the first version's last day
        cap(400, date(2025, 1, 1), date(2026, 1, 1)),  # shares its first day
        cap(400, date(2027, 1, 1)),  # inside the open-ended second version
        cap(400, date(2025, 1, 1)),  # open-ended, covers everything after
    ],
)
def test_overlapping_new_version_is_refused(new: FeeCap) -> None:
    with pytest.raises(CapVersionOverlapError) as raised:
        validate_new_cap_version(VERSIONS, new)
    assert raised.value.field == "effective_from"


def test_adjacent_or_unrelated_new_versions_are_accepted() -> None:
    validate_new_cap_version(VERSIONS, cap(400, date(2025, 1, 1), date(2025, 12, 31)))
    validate_new_cap_version(VERSIONS, cap(400, date(2026, 1, 1), product_id="product-2"))
    validate_new_cap_version(VERSIONS, cap(400, date(2026, 1, 1), unit=ChargingUnit.PER_VOLUME))


def test_superseding_an_open_version_closes_it_the_day_before() -> None:
    successor = cap(420, date(2027, 1, 1))
    closed = SECOND_HALF.ending_on(successor.effective_from - timedelta(days=1))
    assert closed.effective_to == date(2026, 12, 31)
    validate_new_cap_version([FIRST_HALF, closed], successor)
    with pytest.raises(InvalidPolicyError):
        FIRST_HALF.ending_on(date(2026, 7, 31))  # closing can shorten a term, never extend it


def test_malformed_caps_are_refused() -> None:
    with pytest.raises(InvalidPolicyError) as raised:
        cap(100, date(2026, 2, 1), date(2026, 1, 31))
    assert raised.value.field == "effective_to"
    with pytest.raises(InvalidPolicyError) as raised:
        FeeCap("p", Purpose.PUBLIC_WELFARE, ChargingUnit.PER_CALL, cny(1), date(2026, 1, 1))
    assert raised.value.field == "purpose"
    with pytest.raises(InvalidMoneyError):
        cap(-1, date(2026, 1, 1))
    assert cap(100, date(2026, 1, 1), date(2026, 1, 1)).in_force_on(date(2026, 1, 1))


def test_price_at_or_under_cap_is_allowed_and_above_is_refused() -> None:
    check_price_under_cap(cny(500), FIRST_HALF)
    check_price_under_cap(cny(0), FIRST_HALF)
    with pytest.raises(OverCapError) as raised:
        check_price_under_cap(cny(501), FIRST_HALF)
    assert raised.value.field == "price_minor"
    assert raised.value.code == "over_cap"
    with pytest.raises(CurrencyMismatchError):
        check_price_under_cap(Money(1, "USD"), FIRST_HALF)
    with pytest.raises(InvalidMoneyError):
        check_price_under_cap(cny(-1), FIRST_HALF)


def test_local_day_uses_the_exchange_zone() -> None:
    # 16:30 UTC on 31 Dec is already 1 Jan in Beijing time (UTC+8).
    assert local_day(datetime(2026, 12, 31, 16, 30, tzinfo=UTC), SHANGHAI) == date(2027, 1, 1)
    with pytest.raises(InvalidPolicyError):
        local_day(datetime(2026, 1, 1), SHANGHAI)  # noqa: DTZ001 - naive on purpose


# --- periods -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("label", "first_day", "last_day"),
    [
        ("2026", date(2026, 1, 1), date(2026, 12, 31)),
        ("2026-11", date(2026, 11, 1), date(2026, 11, 30)),
        ("2028-02", date(2028, 2, 1), date(2028, 2, 29)),
        ("2026-02", date(2026, 2, 1), date(2026, 2, 28)),
    ],
)
def test_period_days(label: str, first_day: date, last_day: date) -> None:
    period = RevenuePeriod(label)
    assert (period.first_day, period.last_day) == (first_day, last_day)
    assert period.contains(first_day)
    assert period.contains(last_day)
    assert not period.contains(first_day - timedelta(days=1))
    assert not period.contains(last_day + timedelta(days=1))


@pytest.mark.parametrize("label", ["26", "2026-13", "2026-00", "2026-1", "0000", "2026-11-01", ""])
def test_malformed_period_labels_are_refused(label: str) -> None:
    with pytest.raises(InvalidPolicyError) as raised:
        RevenuePeriod(label)
    assert raised.value.field == "period"


def test_period_neighbours_cross_year_boundaries() -> None:
    assert RevenuePeriod("2026-01").previous() == RevenuePeriod("2025-12")
    assert RevenuePeriod("2026-12").following() == RevenuePeriod("2027-01")
    assert RevenuePeriod("2026").previous() == RevenuePeriod("2025")
    assert RevenuePeriod("2026").following().granularity is PeriodGranularity.YEAR
    assert RevenuePeriod.containing(date(2026, 11, 5), PeriodGranularity.MONTH).label == "2026-11"
    with pytest.raises(InvalidPolicyError):
        RevenuePeriod("9999").following()


def test_period_utc_bounds_are_half_open_in_the_exchange_zone() -> None:
    start, end = RevenuePeriod("2026-11").utc_bounds(SHANGHAI)
    assert start == datetime(2026, 10, 31, 16, 0, tzinfo=UTC)
    assert end == datetime(2026, 11, 30, 16, 0, tzinfo=UTC)


# --- maximum permitted revenue ----------------------------------------------------------------


def test_ceiling_is_cost_plus_profit_plus_tax() -> None:
    ceiling = RevenueCeiling("operator-1", RevenuePeriod("2026"), cny(800), cny(150), cny(50))
    assert ceiling.approved == cny(1000)


def test_ceiling_components_must_be_non_negative_and_one_currency() -> None:
    with pytest.raises(InvalidMoneyError) as raised:
        RevenueCeiling("operator-1", RevenuePeriod("2026"), cny(800), cny(-1), cny(50))
    assert raised.value.field == "permitted_profit"
    with pytest.raises(CurrencyMismatchError) as mismatch:
        RevenueCeiling("operator-1", RevenuePeriod("2026"), cny(800), cny(1), Money(5, "USD"))
    assert mismatch.value.field == "tax"


def test_previous_excess_is_deducted_and_never_below_zero() -> None:
    assert effective_ceiling(cny(1000), cny(0)) == cny(1000)
    assert effective_ceiling(cny(1000), cny(300)) == cny(700)
    assert effective_ceiling(cny(1000), cny(1000)) == cny(0)
    assert effective_ceiling(cny(1000), cny(1500)) == cny(0)


def test_headroom_and_fit() -> None:
    assert headroom(cny(700), cny(600)) == cny(100)
    assert headroom(cny(700), cny(800)) == cny(0)
    assert fits_under_ceiling(cny(700), cny(600), cny(100))
    assert not fits_under_ceiling(cny(700), cny(600), cny(101))
    assert fits_under_ceiling(cny(0), cny(0), cny(0))
    assert not fits_under_ceiling(cny(0), cny(0), cny(1))


def test_excess_revenue() -> None:
    assert excess_revenue(cny(700), cny(650)) == cny(0)
    assert excess_revenue(cny(700), cny(700)) == cny(0)
    assert excess_revenue(cny(700), cny(760)) == cny(60)


def test_carry_over_across_three_periods() -> None:
    # 2025 overshoots by 200; 2026's approved 1000 becomes 800; 2026 realises 850 → 50 more.
    excess_2025 = excess_to_carry_forward(cny(1000), cny(0), cny(1200))
    assert excess_2025 == cny(200)
    assert effective_ceiling(cny(1000), excess_2025) == cny(800)
    excess_2026 = excess_to_carry_forward(cny(1000), excess_2025, cny(850))
    assert excess_2026 == cny(50)
    assert effective_ceiling(cny(900), excess_2026) == cny(850)


def test_excess_larger_than_next_ceiling_keeps_its_remainder() -> None:
    # 600 of excess against an approved 400: nothing fits, and 200 is still owed next time.
    assert effective_ceiling(cny(400), cny(600)) == cny(0)
    assert excess_to_carry_forward(cny(400), cny(600), cny(0)) == cny(200)


# --- free use ----------------------------------------------------------------------------------

SCHOOL_GRANT = Eligibility(
    buyer_org_id="school-1",
    purposes=frozenset({Purpose.PUBLIC_WELFARE}),
    valid_from=date(2026, 1, 1),
    valid_to=date(2026, 12, 31),
    evidence="教育局函 2025-118",
)


@pytest.mark.parametrize("day", [date(2026, 1, 1), date(2026, 6, 1), date(2026, 12, 31)])
def test_free_use_within_the_grant_term(day: date) -> None:
    check_free_use(Purpose.PUBLIC_WELFARE, [SCHOOL_GRANT], day, buyer_org_id="school-1")


@pytest.mark.parametrize(
    ("purpose", "day", "buyer", "reason"),
    [
        (Purpose.INDUSTRY_DEVELOPMENT, date(2026, 6, 1), "school-1", "purpose_is_paid"),
        (Purpose.PUBLIC_GOVERNANCE, date(2026, 6, 1), "school-1", "not_eligible"),
        (Purpose.PUBLIC_WELFARE, date(2026, 6, 1), "school-2", "not_eligible"),
        (Purpose.PUBLIC_WELFARE, date(2025, 12, 31), "school-1", "not_yet_valid"),
        (Purpose.PUBLIC_WELFARE, date(2027, 1, 1), "school-1", "expired"),
    ],
)
def test_free_use_refused(purpose: Purpose, day: date, buyer: str, reason: str) -> None:
    with pytest.raises(IneligibleForFreeUseError) as raised:
        check_free_use(purpose, [SCHOOL_GRANT], day, buyer_org_id=buyer)
    assert raised.value.field == "purpose"
    assert raised.value.reason == reason


def test_a_later_grant_renews_an_expired_one() -> None:
    renewal = Eligibility(
        "school-1",
        frozenset({Purpose.PUBLIC_WELFARE}),
        date(2027, 1, 1),
        date(2027, 12, 31),
        "续期",
    )
    check_free_use(
        Purpose.PUBLIC_WELFARE, [SCHOOL_GRANT, renewal], date(2027, 3, 1), buyer_org_id="school-1"
    )


def test_malformed_eligibility_is_refused() -> None:
    welfare = frozenset({Purpose.PUBLIC_WELFARE})
    with pytest.raises(InvalidPolicyError) as raised:
        Eligibility("b", frozenset({INDUSTRY}), date(2026, 1, 1), date(2026, 2, 1), "doc")
    assert raised.value.field == "purposes"
    with pytest.raises(InvalidPolicyError) as raised:
        Eligibility("b", welfare, date(2026, 1, 1), date(2026, 2, 1), "  ")
    assert raised.value.field == "evidence"
    with pytest.raises(InvalidPolicyError) as raised:
        Eligibility("b", welfare, date(2026, 2, 1), date(2026, 1, 1), "doc")
    assert raised.value.field == "valid_to"
