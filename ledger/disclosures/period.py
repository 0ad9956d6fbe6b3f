"""The period an accounting of disclosures covers: whole days (UTC), both ends included, six years at most.

HIPAA 45 CFR 164.528(a) gives a patient the disclosures of the six years before their request,
or of a shorter period they name. A period here is two dates; left out, the end is today and the
start the first day of the six years ending with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import MINYEAR, UTC, date, datetime, timedelta
from typing import Final

from ledger.exceptions import InvalidPeriodError, PeriodTooLongError

MAX_YEARS: Final = 6
"""The longest period an accounting covers (164.528(a)(3))."""


def years_before(day: date, years: int) -> date:
    """The same calendar day ``years`` earlier (29 February falls back to 1 March; the first day of
    the calendar if there is none so early)."""
    if day.year - years < MINYEAR:
        return date.min
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February in a year without one
        return date(day.year - years, 3, 1)


def earliest_start(end: date) -> date:
    """The first day of the six years that end with ``end`` (included)."""
    return years_before(end + timedelta(days=1), MAX_YEARS)


def _midnight(day: date) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()


@dataclass(frozen=True)
class Period:
    """Whole UTC days from ``start`` to ``end``, both included."""

    start: date
    end: date

    @property
    def since(self) -> float:
        """The first moment of the period (unix seconds)."""
        return _midnight(self.start)

    @property
    def until(self) -> float:
        """The first moment after the period (unix seconds)."""
        return _midnight(self.end + timedelta(days=1))


def requested_period(start: date | None, end: date | None, today: date) -> Period:
    """The period a patient asked for: ``end`` defaults to ``today``, ``start`` to the earliest day
    six years allow.

    Raises:
        InvalidPeriodError: The period starts after it ends, or ends after tomorrow.
        PeriodTooLongError: It covers more than six years.
    """
    end = end or today
    if end > today + timedelta(days=1):  # a day ahead of UTC at most: the patient's own today
        raise InvalidPeriodError(f"the period ends in the future ({end})", field="to", end=str(end), today=str(today))
    earliest = earliest_start(end)
    start = start or earliest
    if start > end:
        raise InvalidPeriodError(
            f"the period starts ({start}) after it ends ({end})", field="from", start=str(start), end=str(end)
        )
    if start < earliest:
        raise PeriodTooLongError(
            f"an accounting covers at most {MAX_YEARS} years: a period ending {end} starts on {earliest} or later",
            field="from",
            start=str(start),
            end=str(end),
            earliest_start=str(earliest),
        )
    return Period(start, end)
