"""The period of an accounting: whole UTC days, both ends included, six years at most, 29 February included."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from ledger.disclosures.period import Period, earliest_start, requested_period
from ledger.exceptions import InvalidPeriodError, PeriodTooLongError

TODAY = date(2026, 12, 2)


@pytest.mark.parametrize(
    ("end", "earliest"),
    [
        (date(2026, 12, 2), date(2020, 12, 3)),
        (date(2026, 12, 31), date(2021, 1, 1)),
        (date(2026, 2, 28), date(2020, 3, 1)),  # the day after is 1 March
        (date(2024, 2, 29), date(2018, 3, 1)),
        (date(2028, 2, 28), date(2022, 3, 1)),  # six years before 29 February 2028: no such day in 2022
    ],
)
def test_six_years_end_with_the_last_day(end: date, earliest: date) -> None:
    assert earliest_start(end) == earliest
    assert requested_period(earliest, end, end) == Period(earliest, end)
    with pytest.raises(PeriodTooLongError) as refused:
        requested_period(earliest - timedelta(days=1), end, end)
    assert refused.value.code == "period_too_long"
    assert refused.value.details["earliest_start"] == str(earliest)


def test_defaults_are_the_six_years_up_to_today() -> None:
    assert requested_period(None, None, TODAY) == Period(date(2020, 12, 3), TODAY)
    assert requested_period(date(2026, 1, 1), None, TODAY) == Period(date(2026, 1, 1), TODAY)
    assert requested_period(None, date(2025, 6, 30), TODAY) == Period(date(2019, 7, 1), date(2025, 6, 30))


def test_a_period_that_ends_before_it_starts_is_refused() -> None:
    with pytest.raises(InvalidPeriodError) as refused:
        requested_period(date(2026, 3, 2), date(2026, 3, 1), TODAY)
    assert (refused.value.code, refused.value.details["field"]) == ("invalid_period", "from")
    assert not isinstance(refused.value, PeriodTooLongError)


@pytest.mark.parametrize("end", [date(2026, 12, 4), date.max])
def test_a_period_that_ends_after_tomorrow_is_refused(end: date) -> None:
    assert requested_period(None, TODAY + timedelta(days=1), TODAY).end == TODAY + timedelta(days=1)
    with pytest.raises(InvalidPeriodError) as refused:
        requested_period(None, end, TODAY)
    assert refused.value.details["field"] == "to"


def test_the_first_days_of_the_calendar_are_a_period_too() -> None:
    assert earliest_start(date(3, 1, 1)) == date.min
    assert requested_period(date.min, date(3, 1, 1), TODAY).since < 0


def test_a_period_is_its_days_from_midnight_to_midnight_utc() -> None:
    period = Period(date(2026, 3, 1), date(2026, 3, 1))
    assert period.since == datetime(2026, 3, 1, tzinfo=UTC).timestamp()
    assert period.until - period.since == 86_400


@given(st.dates(min_value=date(1907, 1, 1), max_value=date(9990, 12, 31)))
@example(date(2028, 2, 28))
@example(date(2028, 2, 29))
@example(date(2024, 2, 28))
def test_no_period_allowed_is_longer_than_six_years(end: date) -> None:
    start = earliest_start(end)
    assert 6 * 365 <= (end - start).days + 1 <= 6 * 365 + 2  # six years of days, leap days included
    requested_period(start, end, end)
