"""Named tamper cases, kept as data in ``tests/testdata/auditor/receipts/``, each failing at its step.

Every case is checked three ways, which must agree: :func:`verify_one` (the single-receipt path,
with ``ledger.records.merkle.process_proof``), the ``careledger-audit verify`` command (exit code), and
``verify-receipts`` over a folder holding all of them (the fast parser and memoised verifier). The
API's verifier (``verify_receipt``, as ``POST /v1/verify`` runs it) then words every step it fails
exactly as the auditor does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ledger.auditor.bulk import verify_receipts
from ledger.auditor.chain_reader import ChainReader
from ledger.auditor.cli import app
from ledger.auditor.verify import CHAIN_STEPS, ChainFacts, verify_one
from ledger.exceptions import InvalidProofError
from ledger.records.hashing import digest_bytes
from ledger.records.receipts import Receipt, verify_receipt
from ledger.records.verification import API_STEPS, LEAF, PARSE, PROOF
from tests.ledger.auditor.conftest import Scenario, load_cases, tampered

CASES = load_cases("receipts")
runner = CliRunner()


def test_the_cases_cover_the_named_tampers() -> None:
    names = {case["id"] for case in CASES}
    assert {
        "changed_document_byte",
        "changed_salt",
        "wrong_proof_sibling",
        "truncated_proof",
        "root_never_anchored",
        "anchorer_role_revoked_before",
        "block_before_role_granted",
        "other_chain_id",
    } <= names
    steps = {case["expect"]["step"] for case in CASES} - {None}
    assert steps <= {"parse", "digest", "leaf", "proof", *CHAIN_STEPS}


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_case_fails_at_its_step(case: dict[str, Any], scenario: Scenario, reader: ChainReader, tmp_path: Path) -> None:
    receipt, document = tampered(case, scenario)
    outcome = verify_one(
        json.dumps(receipt), document_digest=digest_bytes(document) if document else None, facts=ChainFacts(reader)
    )
    assert outcome.failing_step == case["expect"]["step"], [c for c in outcome.checks if not c.ok]

    receipt_path = tmp_path / "r.receipt.json"
    receipt_path.write_text(json.dumps(receipt))
    args = ["verify", "--receipt", str(receipt_path), *scenario.chain_options, "--json"]
    if document is not None:
        (tmp_path / "doc.bin").write_bytes(document)
        args += ["--file", str(tmp_path / "doc.bin")]
    result = runner.invoke(app, args)
    assert result.exit_code == case["expect"]["exit_code"], result.output
    assert json.loads(result.stdout)["failingStep"] == case["expect"]["step"]


def test_bulk_verification_names_the_same_steps(scenario: Scenario, reader: ChainReader, tmp_path: Path) -> None:
    folder = tmp_path / "receipts"
    folder.mkdir()
    for case in CASES:
        receipt, document = tampered(case, scenario)
        (folder / f"{case['id']}.receipt.json").write_text(json.dumps(receipt))
        if document is not None:
            (folder / f"{case['id']}.bin").write_bytes(document)
    for index, receipt_model in enumerate(scenario.receipts):  # the untampered batch, without documents
        (folder / "batch" / f"{index}.receipt.json").parent.mkdir(exist_ok=True)
        (folder / "batch" / f"{index}.receipt.json").write_text(receipt_model.to_json())
    report = verify_receipts(folder, ChainFacts(reader), workers=1)
    failed = {name.removesuffix(".receipt.json"): f.step for name, f in report.failures}
    expected = {c["id"]: c["expect"]["step"] for c in CASES if c["expect"]["step"] is not None}
    assert failed == expected
    assert report.total == len(CASES) + len(scenario.receipts) and report.valid == report.total - len(expected)
    assert report.with_documents == sum(1 for c in CASES if "document" in c)


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_api_and_auditor_word_failing_steps_alike(
    case: dict[str, Any], scenario: Scenario, reader: ChainReader
) -> None:
    """Each step both run comes out the same (verdict, text, values compared), and the API fails at
    the case's step: it checks every claim of a receipt, as the auditor does.

    One difference is by design: after a failed ``leaf``, the API walks the proof from the receipt's
    leaf, the auditor from the leaf it computed, so their ``proof`` steps may differ then."""
    receipt, document = tampered(case, scenario)
    digest = digest_bytes(document) if document else None
    auditor = verify_one(json.dumps(receipt), document_digest=digest, facts=ChainFacts(reader))
    try:
        parsed = Receipt.parse(receipt)
    except InvalidProofError as err:  # the API answers 400 invalid_proof: the same step, the same words
        assert auditor.failing_step == PARSE.name
        assert err.message.startswith(PARSE.because("")) and auditor.checks[0].detail.startswith(PARSE.because(""))
        return
    api = verify_receipt(parsed, document_digest=digest, anchors=scenario.ledger.anchors, contract_verdict=False)
    auditor_checks = {check.name: check for check in auditor.checks}
    walked_apart = not auditor_checks[LEAF.name].ok
    differing = [
        (check, auditor_checks[check.name])
        for check in api.checks
        if check.name in auditor_checks
        and check != auditor_checks[check.name]
        and not (walked_apart and check.name == PROOF.name)
    ]
    assert differing == []
    assert {check.name for check in api.failures} <= {check.name for check in auditor.failures}
    if case["expect"]["step"] in {step.name for step in API_STEPS} or case["expect"]["step"] is None:
        assert api.failing_step == case["expect"]["step"], api.failures
