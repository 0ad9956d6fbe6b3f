"""Names shown to people: NFKC, no invisible characters, and no look-alike of another name."""

from __future__ import annotations

import pytest

from ledger.exceptions import ConfusableNameError, InvalidNameError
from ledger.store.organisation_names import check_distinct, normalise_name, skeleton

HOSPITAL = "St Mary's Hospital"


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("St Mary\u2019s", "St Mary\u2019s"),
        ("\uff33\uff54 Mary's", "St Mary's"),  # fullwidth letters
        ("\U0001d412t Mary's", "St Mary's"),  # a mathematical bold capital S
        ("St\u00a0Mary's   Hospital ", HOSPITAL),  # a no-break space, runs of spaces
        ("Caf\u0065\u0301", "Caf\u00e9"),  # composed
    ],
)
def test_names_are_stored_nfkc(given: str, stored: str) -> None:
    assert normalise_name(given) == stored


@pytest.mark.parametrize(
    "name",
    [
        "St Mary's\u200b Hospital",  # zero-width space
        "St Mary's\u200d",  # zero-width joiner
        "\u202eSt Mary's",  # right-to-left override
        "St \u2066Mary\u2069's",  # left-to-right isolate
        "\ufeffSt Mary's",  # byte order mark
        "St Mary's\u2060",  # word joiner
        "St Mary's\u0007",  # a control character
        "\u200b",
        "   ",
    ],
)
def test_invisible_and_control_characters_are_refused(name: str) -> None:
    with pytest.raises(InvalidNameError) as refused:
        normalise_name(name)
    assert refused.value.code == "invalid_name" and refused.value.details["field"] == "name"


@pytest.mark.parametrize(
    "lookalike",
    [
        "St M\u0430ry's Hospital",  # Cyrillic a
        "St Mary's H\u03bfspital",  # Greek omicron
        "St Mary's Hosp\u0456tal",  # Cyrillic i
        "ST MARY'S HOSPITAL",  # case alone
        "St Mary's Hospita1",  # digit one for l
        "St Mary's H0spital",  # digit zero for o
        "St Mary's HospitaI",  # capital I for l
        "StMary's Hospital",  # a space less
    ],
)
def test_look_alikes_are_refused(lookalike: str) -> None:
    name = normalise_name(lookalike)
    assert name != HOSPITAL and skeleton(name) == skeleton(HOSPITAL)
    with pytest.raises(ConfusableNameError) as refused:
        check_distinct(name, [(1, "Lakeside Clinic"), (7, HOSPITAL)])
    assert refused.value.code == "confusable_name" and refused.value.details["existing"] == 7


def test_letter_pairs_and_distinct_names() -> None:
    assert skeleton("Moor Clinic") == skeleton("rnoor Clinic")  # rn reads as m
    assert skeleton("Willow Ward") == skeleton("VVillow Ward")
    # the one-stroke letters are unified before the pairs: a capital I or a 1 for the l of "cl" too
    assert skeleton("Acme Clinic") == skeleton("Acme CIinic") == skeleton("Acme C1inic") == skeleton("Acme dinic")
    check_distinct("St Mary's Clinic", [(1, HOSPITAL), (2, "St John's Hospital")])
    check_distinct(HOSPITAL, [(1, HOSPITAL)])  # the same name is that organisation, not a look-alike
