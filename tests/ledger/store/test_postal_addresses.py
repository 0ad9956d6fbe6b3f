"""Postal addresses as stored: each part normalised, hiding characters and overflow refused, kept whole."""

from __future__ import annotations

import pytest

from ledger.exceptions import InvalidTextError
from ledger.store.postal_addresses import (
    MAX_LINES,
    MAX_PART_LENGTH,
    postal_address,
    postal_address_text,
    stored_postal_address,
)


def test_parts_are_stored_nfkc_with_whitespace_collapsed_and_read_back_whole() -> None:
    address = postal_address(["  12\u00a0 Harbour   Street "], city="\uff30ortsmouth", postal_code="PO1 2AB")
    assert address.lines == ("12 Harbour Street",) and address.city == "Portsmouth"
    assert stored_postal_address(postal_address_text(address)) == address
    assert address.one_line() == "12 Harbour Street, PO1 2AB, Portsmouth"
    assert address.to_fhir() == {
        "use": "work", "type": "postal", "line": ["12 Harbour Street"], "city": "Portsmouth", "postalCode": "PO1 2AB",
    }  # fmt: skip
    assert stored_postal_address(None) is None and postal_address_text(None) is None


@pytest.mark.parametrize(
    ("lines", "parts", "field"),
    [
        (["1 Quay\u202eRoad"], {}, "postalAddress.lines[0]"),
        (["1 Quay Road"], {"country": "G\u200bB"}, "postalAddress.country"),
        (["1 Quay Road"], {"city": "\t\n"}, "postalAddress.city"),
        (["x"] * (MAX_LINES + 1), {}, "postalAddress.lines"),
        (["x" * (MAX_PART_LENGTH + 1)], {}, "postalAddress.lines[0]"),
        ([], {}, "postalAddress"),
    ],
)
def test_hiding_characters_overflow_and_nothing_are_refused_by_field(
    lines: list[str], parts: dict[str, str], field: str
) -> None:
    with pytest.raises(InvalidTextError) as refused:
        postal_address(lines, **parts)
    assert refused.value.details["field"] == field
