#!/usr/bin/env python3
"""Slither over the production contracts, failing on any finding the triage file does not accept.

Runs ``slither`` (from its own virtualenv: ``make slither`` installs the pinned version) with the
solc-js wrapper ``scripts/solcjs.js``, then compares its findings with ``contracts/slither-triage.toml``.
A finding is named by its detector and the contract and function (or other element) it is about,
not by line numbers, so editing a contract does not churn the triage. Every accepted finding carries
a one-line reason. The run fails on a finding that is not accepted, and on an accepted one that no
longer occurs (the triage must say what is true).

    .venv-slither/bin/python scripts/slither_check.py [--slither PATH]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TRIAGE = ROOT / "contracts" / "slither-triage.toml"


@dataclass(frozen=True, order=True)
class Finding:
    """One Slither finding, named independently of line numbers."""

    check: str
    contract: str
    element: str

    def __str__(self) -> str:
        return f"{self.check}: {self.contract}.{self.element}"


def findings_of(report: dict[str, Any]) -> tuple[set[Finding], dict[Finding, str]]:
    """The findings of a ``slither --json`` report, and each one's description."""
    found: set[Finding] = set()
    descriptions: dict[Finding, str] = {}
    for result in report.get("results", {}).get("detectors", []):
        element = result["elements"][0] if result.get("elements") else {}
        parent = (element.get("type_specific_fields") or {}).get("parent") or {}
        contract = parent.get("name") if parent.get("type") == "contract" else element.get("name", "")
        finding = Finding(result["check"], str(contract), str(element.get("name", "")))
        found.add(finding)
        descriptions[finding] = result.get("description", "").strip()
    return found, descriptions


def accepted_of(triage: dict[str, Any]) -> dict[Finding, str]:
    """The accepted findings of a triage document and their reasons (every entry needs one)."""
    accepted: dict[Finding, str] = {}
    for entry in triage.get("accepted", []):
        reason = str(entry.get("reason", "")).strip()
        finding = Finding(entry["check"], entry["contract"], entry["element"])
        if not reason or "\n" in reason:
            raise ValueError(f"{finding}: the triage needs a one-line reason")
        accepted[finding] = reason
    return accepted


def compare(found: set[Finding], accepted: dict[Finding, str]) -> tuple[list[Finding], list[Finding]]:
    """Findings that are not accepted, and accepted findings that no longer occur."""
    return sorted(found - accepted.keys()), sorted(accepted.keys() - found)


def run_slither(slither: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "slither.json"
        command = [
            slither, "contracts",
            "--solc-standard-json", "--solc", str(ROOT / "scripts" / "solcjs.js"),
            "--solc-remaps", "@openzeppelin/=node_modules/@openzeppelin/",
            "--filter-paths", "node_modules|contracts/test",
            "--json", str(out),
        ]  # fmt: skip
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
        if not out.exists():
            raise SystemExit(f"slither did not run (exit {done.returncode}):\n{done.stderr[-2000:]}")
        report: dict[str, Any] = json.loads(out.read_text())
    if not report.get("success"):
        raise SystemExit(f"slither failed: {report.get('error')}")
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slither", default=str(ROOT / ".venv-slither" / "bin" / "slither"))
    args = parser.parse_args()
    found, descriptions = findings_of(run_slither(args.slither))
    accepted = accepted_of(tomllib.loads(TRIAGE.read_text()))
    new, stale = compare(found, accepted)
    for finding in new:
        print(f"NOT ACCEPTED {finding}\n  {descriptions[finding]}", file=sys.stderr)
    for finding in stale:
        print(f"STALE TRIAGE {finding}: accepted in {TRIAGE.name} but no longer found", file=sys.stderr)
    if new or stale:
        return 1
    print(f"slither: {len(found)} findings, each accepted in {TRIAGE.relative_to(ROOT)} with its reason")
    return 0


if __name__ == "__main__":
    sys.exit(main())
