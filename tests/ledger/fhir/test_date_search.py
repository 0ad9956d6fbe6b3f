"""FHIR ``date`` search values as time windows: each prefix against the range of the value's precision."""

from __future__ import annotations

from datetime import datetime

import pytest

from ledger.exceptions import InputError
from ledger.fhir.date_search import TimeWindow, date_window


def at(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()  # every case names its zone


@pytest.mark.parametrize(
    ("values", "since", "until"),
    [
        (["2026-03-05"], "2026-03-05T00:00:00Z", "2026-03-06T00:00:00Z"),
        (["eq2026-03"], "2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z"),
        (["2026-12"], "2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z"),
        (["2026"], "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z"),
        (["ge2026-03-05"], "2026-03-05T00:00:00Z", None),
        (["gt2026-03-05"], "2026-03-06T00:00:00Z", None),
        (["le2026-03-05"], None, "2026-03-06T00:00:00Z"),
        (["lt2026-03-05"], None, "2026-03-05T00:00:00Z"),
        (["ge2026-03-05T10:00Z"], "2026-03-05T10:00:00Z", None),
        (["gt2026-03-05T10:00Z"], "2026-03-05T10:01:00Z", None),
        (["le2026-03-05T10:00:30+01:00"], None, "2026-03-05T09:00:31Z"),
        (["2026-03-05T10:00:30.250Z"], "2026-03-05T10:00:30.250Z", "2026-03-05T10:00:30.251Z"),
        (["ge2026-01-01", "lt2026-02-01"], "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"),
        (["ge2026-01-01", "ge2026-01-10"], "2026-01-10T00:00:00Z", None),
        ([], None, None),
    ],
)
def test_each_prefix_compares_with_the_values_range(values: list[str], since: str | None, until: str | None) -> None:
    expected = TimeWindow(at(since) if since else None, at(until) if until else None)
    assert date_window(values) == expected


@pytest.mark.parametrize(
    "value",
    [
        "ne2026-01-01",
        "sa2026",
        "ap2026",
        "2026-13-01",
        "2026-02-30",
        "2026-01-01T10:00",
        "26-01-01",
        "x",
        "0000",
        "9999-12-31T23:59:59Z",
        "2026-01-01T10:00+24:00",
    ],
)
def test_what_a_window_cannot_say_is_refused(value: str) -> None:
    with pytest.raises(InputError) as refused:
        date_window([value])
    assert refused.value.details["field"] == "date"
