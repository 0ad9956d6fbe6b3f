"""FHIR ``date`` search parameters as a time window: ``date=ge2026-01-01&date=lt2026-02-01``.

A value is a date (``2026``, ``2026-01``, ``2026-01-31``) or an instant with its time zone
(``2026-01-31T10:00Z``, ``...:30``, ``...:30.250+01:00``), after an optional prefix (FHIR's
``eq`` by default, ``ge``, ``gt``, ``le``, ``lt``). Each value stands for the range of its precision
(a day, a second, a millisecond); the prefixes compare with that range as FHIR says, and several
values narrow the window together (all must hold). Other prefixes (``ne``, ``sa``, ``eb``, ``ap``)
are refused, not ignored.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Final

from ledger.exceptions import InputError

PREFIXES: Final = ("eq", "ge", "gt", "le", "lt")
_VALUE: Final = re.compile(
    r"(?P<prefix>[a-z]{2})?"
    r"(?P<year>[0-9]{4})(?:-(?P<month>[0-9]{2})(?:-(?P<day>[0-9]{2})"
    r"(?:T(?P<time>[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?P<fraction>\.[0-9]{1,6})?)?)(?P<zone>Z|[+-][0-9]{2}:[0-9]{2}))?)?)?"
)


@dataclass(frozen=True)
class TimeWindow:
    """Times at or after ``since`` and before ``until`` (unix seconds; None: unbounded)."""

    since: float | None = None
    until: float | None = None

    def narrowed(self, since: float | None = None, until: float | None = None) -> TimeWindow:
        """This window and another together: the later start and the earlier end."""
        starts = [t for t in (self.since, since) if t is not None]
        ends = [t for t in (self.until, until) if t is not None]
        return TimeWindow(max(starts) if starts else None, min(ends) if ends else None)


def _range(text: str, field: str) -> tuple[str, float, float]:
    match = _VALUE.fullmatch(text)
    if match is None:
        raise InputError(f"{field} is a date or an instant with its time zone, after an optional prefix", field=field)
    prefix = match["prefix"] or "eq"
    if prefix not in PREFIXES:
        raise InputError(f"{field} prefixes are {', '.join(PREFIXES)}", field=field, prefix=prefix)
    try:
        start, end = _bounds(match)
    except (ValueError, OverflowError) as err:
        raise InputError(f"{field} is not a valid date or instant", field=field) from err
    return prefix, start.timestamp(), end.timestamp()


def _bounds(match: re.Match[str]) -> tuple[datetime, datetime]:
    year = int(match["year"])
    if match["month"] is None:
        return datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)
    month = int(match["month"])
    if match["day"] is None:
        following = (year + 1, 1) if month == 12 else (year, month + 1)
        return datetime(year, month, 1, tzinfo=UTC), datetime(*following, 1, tzinfo=UTC)
    day = date(year, month, int(match["day"]))
    if match["time"] is None:
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        return start, start + timedelta(days=1)
    zone = "+00:00" if match["zone"] == "Z" else match["zone"]
    start = datetime.fromisoformat(f"{day.isoformat()}T{match['time']}{zone}")
    fraction = match["fraction"]
    if fraction is not None:
        step = timedelta(seconds=10.0 ** -(len(fraction) - 1))
    else:
        step = timedelta(seconds=1 if match["time"].count(":") == 2 else 60)
    return start, start + step


def date_window(values: Sequence[str], *, field: str = "date") -> TimeWindow:
    """The window all of ``values`` (a ``date`` parameter's occurrences) describe together.

    Raises:
        InputError: A value is malformed or has an unsupported prefix.
    """
    window = TimeWindow()
    for text in values:
        prefix, start, end = _range(text, field)
        if prefix == "eq":
            window = window.narrowed(since=start, until=end)
        elif prefix == "ge":
            window = window.narrowed(since=start)
        elif prefix == "gt":
            window = window.narrowed(since=end)
        elif prefix == "le":
            window = window.narrowed(until=end)
        else:  # lt
            window = window.narrowed(until=start)
    return window
