"""Reading a Provenance search's parameters: the record a target names, the patient, the page."""

from __future__ import annotations

import pytest

from ledger.exceptions import InputError
from ledger.fhir.provenance_search import ProvenanceQuery, provenance_query
from ledger.fhir.search_parameters import DEFAULT_COUNT, MAX_COUNT

RECORD = "00000000000000017d3f1a2b3c4d5e6f"
PATIENT = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


@pytest.mark.parametrize(
    ("params", "query"),
    [
        ({}, ProvenanceQuery()),
        ({"target": [RECORD]}, ProvenanceQuery(target=RECORD)),
        ({"target": [f"urn:careledger:record|{RECORD}"]}, ProvenanceQuery(target=RECORD)),
        ({"patient": [f"Patient/{PATIENT.lower()}"]}, ProvenanceQuery(patient=PATIENT)),
        ({"patient": [PATIENT]}, ProvenanceQuery(patient=PATIENT)),
        ({"_count": ["200"], "_cursor": [RECORD]}, ProvenanceQuery(count=MAX_COUNT, cursor=RECORD)),
    ],
)
def test_a_search_reads_its_parameters(params: dict[str, list[str]], query: ProvenanceQuery) -> None:
    assert provenance_query(params) == query
    assert ProvenanceQuery().count == DEFAULT_COUNT == 50


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"identifier": [RECORD]}, "identifier"),
        ({"target": ["Observation/1"]}, "target"),
        ({"target": [f"urn:careledger:receipt|{RECORD}"]}, "target"),
        ({"target": [RECORD.upper()]}, "target"),
        ({"target": [RECORD, RECORD]}, "target"),
        ({"patient": ["Organization/" + PATIENT]}, "patient"),
        ({"_count": ["201"]}, "_count"),
        ({"_cursor": ["next"]}, "_cursor"),
    ],
)
def test_what_a_search_cannot_answer_is_refused_naming_the_parameter(params: dict[str, list[str]], field: str) -> None:
    with pytest.raises(InputError) as refused:
        provenance_query(params)
    assert refused.value.details["field"] == field
