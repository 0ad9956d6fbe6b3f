"""The Slither gate: an unaccepted finding fails, a stale acceptance fails, a reason is required."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest

from tests.support import paths
from tests.support.scripts import load_script

gate = load_script("slither_check")


def _report(*findings: tuple[str, str, str]) -> dict[str, Any]:
    detectors = [
        {
            "check": check,
            "description": f"{contract}.{element} does something",
            "elements": [
                {
                    "type": "function",
                    "name": element,
                    "type_specific_fields": {"parent": {"type": "contract", "name": contract}},
                }
            ],
        }
        for check, contract, element in findings
    ]
    return {"success": True, "results": {"detectors": detectors}}


def test_findings_are_named_by_detector_contract_and_element() -> None:
    found, descriptions = gate.findings_of(_report(("timestamp", "RecordAnchor", "anchor")))
    assert found == {gate.Finding("timestamp", "RecordAnchor", "anchor")}
    assert descriptions[gate.Finding("timestamp", "RecordAnchor", "anchor")] == "RecordAnchor.anchor does something"


def test_an_unaccepted_finding_and_a_stale_acceptance_both_fail() -> None:
    found, _ = gate.findings_of(_report(("timestamp", "A", "f"), ("reentrancy-eth", "A", "g")))
    accepted = {gate.Finding("timestamp", "A", "f"): "why", gate.Finding("timestamp", "B", "h"): "why"}
    new, stale = gate.compare(found, accepted)
    assert new == [gate.Finding("reentrancy-eth", "A", "g")]
    assert stale == [gate.Finding("timestamp", "B", "h")]


@pytest.mark.parametrize("reason", ["", "   ", "two\nlines"])
def test_every_acceptance_needs_a_one_line_reason(reason: str) -> None:
    with pytest.raises(ValueError, match="one-line reason"):
        gate.accepted_of({"accepted": [{"check": "timestamp", "contract": "A", "element": "f", "reason": reason}]})


def test_the_committed_triage_gives_every_finding_a_reason() -> None:
    accepted = gate.accepted_of(tomllib.loads((paths.REPO / "contracts" / "slither-triage.toml").read_text()))
    assert accepted and all(reason for reason in accepted.values())
