"""The step table: each step's texts are defined once, in ``ledger/records/verification.py``, and every
verifier words its steps from it (the API and the auditor giving the same text for the same failing
step is checked on the shared tamper cases, ``tests/auditor/test_tamper_cases.py``)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from ledger.records import verification
from ledger.records.hashing import digest_bytes, new_salt
from ledger.records.receipts import anchor_batch, verify_receipt
from ledger.records.verification import (
    API_STEPS,
    AUDITOR_STEPS,
    CONTRACT_VERDICT,
    LEAF,
    PROOF,
    STEPS,
    Step,
    proof_check,
)
from ledger.runtime import Ledger
from tests.support import paths

ROOT = paths.REPO
VERIFIERS = [
    "ledger/records/receipts.py",
    "ledger/auditor/verify.py",
    "ledger/auditor/receipt_format.py",
    "ledger/auditor/bulk.py",
    "ledger/auditor/cli.py",
    "api/routes/verify.py",
]
"""The modules that run or report steps: no step text may appear in them, even as part of a string."""
TEXTS = {text: step.name for step in STEPS for text in (step.holds, step.fails)}


def _strings(path: Path) -> list[str]:
    """Every string literal of a module that is a value (f-strings' literal parts included), not prose
    (docstrings, and strings standing as statements)."""
    tree = ast.parse(path.read_text("utf-8"))
    prose = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Expr)}
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in prose
    ]


def test_the_table_names_each_step_and_each_text_once() -> None:
    assert len({step.name for step in STEPS}) == len(STEPS)
    assert len(TEXTS) == 2 * len(STEPS), "two steps share a text"
    assert all(step.checks and step.holds and step.fails for step in STEPS)
    steps = [value for value in vars(verification).values() if isinstance(value, Step)]
    assert set(steps) == set(STEPS), "a step defined outside the table"


@pytest.mark.parametrize("selection", [API_STEPS, AUDITOR_STEPS], ids=["api", "auditor"])
def test_each_callers_steps_run_in_the_tables_order(selection: tuple[Step, ...]) -> None:
    positions = [STEPS.index(step) for step in selection]
    assert positions == sorted(positions)


@pytest.mark.parametrize("module", VERIFIERS)
def test_no_verifier_spells_out_a_step_text(module: str) -> None:
    found = [(text, literal) for literal in _strings(ROOT / module) for text in TEXTS if text in literal]
    assert not found, f"{module} repeats step texts (use ledger.records.verification): {found}"


def test_no_other_module_holds_a_step_text() -> None:
    """Elsewhere a text may be part of another message (a discrepancy), but never stand alone."""
    home = ROOT / "ledger/records/verification.py"
    sources = [p for folder in ("ledger", "api") for p in (ROOT / folder).rglob("*.py") if p != home]
    found = [(str(p.relative_to(ROOT)), s) for p in sources for s in _strings(p) if s.strip() in TEXTS]
    assert not found


def test_api_verifier_words_every_step_from_the_table(ledger: Ledger) -> None:
    records = [(new_salt(), digest_bytes(b"%d" % i)) for i in range(3)]
    receipt = anchor_batch(ledger.anchors, records, ledger.anchorer())[1]
    result = verify_receipt(receipt, document_digest=records[1][1], anchors=ledger.anchors)
    assert result.valid and [c.name for c in result.checks] == [step.name for step in API_STEPS]
    assert [c.detail for c in result.checks] == [step.holds for step in API_STEPS]
    forged = receipt.model_copy(update={"salt": bytes(32)})
    failed = {c.name: c.detail for c in verify_receipt(forged, anchors=ledger.anchors).failures}
    assert failed == {LEAF.name: LEAF.fails, CONTRACT_VERDICT.name: CONTRACT_VERDICT.fails}


def test_an_unwalkable_proof_fails_with_its_reason() -> None:
    check = proof_check(b"\x11" * 32, [b"\x22" * 31], b"\x33" * 32)
    assert not check.ok and check.detail.startswith(PROOF.because(""))
