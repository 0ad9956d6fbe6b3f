"""The one strict JSON parser: what it refuses (with which error) and what it reads exactly."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
import rfc8785
from hypothesis import example, given
from hypothesis import strategies as st

from ledger.exceptions import (
    DuplicateKeyError,
    InexactNumberError,
    InvalidDocumentError,
    InvalidJsonError,
    LedgerError,
    NestingTooDeepError,
    TooManyElementsError,
)
from ledger.records.hashing import digest_json
from ledger.records.strict_json import check_value, parse_json


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ('{"a": 1, "a": 2}', DuplicateKeyError),
        ('{"x": [{"k": 1, "k": 1}]}', DuplicateKeyError),
        ("9007199254740993", InexactNumberError),  # rounds to ...992
        ("-9007199254740993", InexactNumberError),
        ("18446744073709551617", InexactNumberError),  # orjson reads it as 1.8446744073709552e19
        ("0.10000000000000000001", InexactNumberError),  # rounds to 0.1
        ("1.00000000000000000000000000001", InexactNumberError),
        ("1e-400", InexactNumberError),  # underflows to 0
        ("1e400", InexactNumberError),  # overflows to infinity
        ("1" * 5000, InexactNumberError),
        ("NaN", InvalidJsonError),
        ("[-Infinity]", InvalidJsonError),
        ("{not json", InvalidJsonError),
        (b"\xff{}", InvalidJsonError),
        ('"\\ud800"', InvalidDocumentError),  # an unpaired surrogate escape
        ('{"\\udfff": 1}', InvalidDocumentError),
        ("[" * 513 + "]" * 513, NestingTooDeepError),
    ],
    ids=lambda value: repr(value)[:40],
)
def test_refusals_name_their_reason(text: str | bytes, error: type[LedgerError]) -> None:
    with pytest.raises(error) as raised:
        parse_json(text, field="document")
    assert raised.value.details.get("field") == "document"
    with pytest.raises(error):  # the digest of such a text is refused the same way
        digest_json(text)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1.0", 1.0),
        ("1e2", 100.0),
        ("100e-2", 1.0),
        ("0.1", 0.1),
        ("1.50", 1.5),
        ("-0", 0),
        ("-0.0", -0.0),
        ("5e-324", 5e-324),
        ("9007199254740992", 2.0**53),  # exactly a double
        ("1152921504606846976", 2.0**60),  # 2**60 written exactly
        ("1152921504606847000", 2.0**60),  # and as JCS writes it
        ("0.1000000000000000055511151231257827021181583404541015625", 0.1),  # the double's exact value
        ('"\\ud83d\\ude00"', "\U0001f600"),  # a paired escape is one character
        ('["\\\\ud800"]', ["\\ud800"]),  # an escaped backslash, not a surrogate
    ],
)
def test_exact_numbers_and_paired_escapes_are_read(text: str, value: Any) -> None:
    assert parse_json(text) == value


@given(st.floats(allow_nan=False, allow_infinity=False))
@example(2.0**60)
@example(1e21)
def test_every_canonical_number_parses_back_to_itself(number: float) -> None:
    """JCS writes each double in its shortest spelling: that spelling must be read as exact."""
    canonical = rfc8785.dumps(number).decode()
    assert parse_json(canonical) == number
    assert Decimal(repr(parse_json(repr(number)))) == Decimal(repr(number))


def test_element_count_is_bounded_outside_strings() -> None:
    assert parse_json("[" + ",".join(["0"] * 999) + "]", max_elements=1000) == [0] * 999
    with pytest.raises(TooManyElementsError):
        parse_json("[" + ",".join(["0"] * 1000) + "]", max_elements=1000)
    commas_in_a_string = json.dumps(["," * 5000, "[{" * 5000])
    assert len(parse_json(commas_in_a_string, max_elements=10)) == 2
    with pytest.raises(TooManyElementsError):
        parse_json('{"a": {"b": [1, 2, 3]}}', max_elements=4)


def test_check_value_bounds_depth_elements_and_cycles() -> None:
    nested: list[Any] = []
    for _ in range(20):
        nested = [nested]
    check_value(nested, max_depth=21)
    with pytest.raises(NestingTooDeepError):
        check_value(nested, max_depth=20, field="metadata")
    with pytest.raises(TooManyElementsError):
        check_value({"a": list(range(100))}, max_elements=50)
    cyclic: dict[str, Any] = {}
    cyclic["self"] = cyclic
    with pytest.raises(NestingTooDeepError):
        check_value(cyclic)
