"""The accounting of disclosures in headless Chromium: the patient downloads it from the page, which
checks every entry's receipt itself (digest, leaf and proof with ethers; the root against the public
node on anvil, against the service's own node on the embedded chain, saying which) and marks each
valid; then, served tampered, it marks each tampered entry invalid at the step the auditor names
(``careledger-audit verify``) for the same receipt and document."""

from __future__ import annotations

import copy
import json
import re
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from playwright.sync_api import Browser, Page, Route, expect
from typer.testing import CliRunner

from ledger.auditor.cli import app as auditor
from ledger.records.hashing import leaf_hash
from tests.browser.conftest import RunningService, serving
from tests.browser.test_patient_page import PASSPHRASE, TIMEOUT_MS, access, make_app, status_says
from tests.ledger.auditor.conftest import load_cases
from tests.support.chain_under_test import ChainUnderTest

pytestmark = pytest.mark.slow

HOSTILE_NAME = "<img src=x onerror=alert(document.domain)> Clinic"
SECTIONS = ("disclosures", "breakGlass", "denied")
RECEIPT_OPS = ("flip", "flip_proof", "truncate_proof", "add", "fresh_unanchored_tree")
"""The auditor's receipt tamper cases (tests/testdata/auditor/receipts) that apply to any receipt."""
runner = CliRunner()


@pytest.fixture(scope="module")
def service(
    tmp_path_factory: pytest.TempPathFactory, chain_under_test: ChainUnderTest, request: pytest.FixtureRequest
) -> Iterator[RunningService]:
    """The service, naming anvil as the public node the page asks (on the embedded chain there is none)."""
    public = {"CARELEDGER_PUBLIC_RPC_URL": chain_under_test.rpc_url} if chain_under_test.rpc_url else {}
    with serving(tmp_path_factory.mktemp("disclosures") / "data", chain_under_test, request, **public) as running:
        yield running


def _flip(hex_value: str, byte: int) -> str:
    raw = bytearray.fromhex(hex_value[2:])
    raw[byte] ^= 1
    return "0x" + raw.hex()


def tamper_receipt(receipt: dict[str, Any], ops: list[dict[str, Any]]) -> None:
    """Apply a tamper case's receipt operations (a fresh tree keeps the record's own digest, so only
    its root was never anchored)."""
    for op in ops:
        if op["op"] == "flip":
            receipt[op["field"]] = _flip(receipt[op["field"]], op["byte"])
        elif op["op"] == "flip_proof":
            receipt["proof"][op["index"]] = _flip(receipt["proof"][op["index"]], op["byte"])
        elif op["op"] == "truncate_proof":
            receipt["proof"] = receipt["proof"][: -op["drop"]]
        elif op["op"] == "add":
            receipt[op["field"]] += op["delta"]
        else:
            salt = secrets.token_bytes(32)
            leaf = "0x" + leaf_hash(salt, bytes.fromhex(receipt["digest"][2:])).hex()
            receipt.update(salt="0x" + salt.hex(), leaf=leaf, root=leaf, proof=[], leafCount=1)


def _change_document(entry: dict[str, Any]) -> None:
    entry["document"]["purpose"] = entry["purpose"] = "HRESCH"  # the entry and its document agree, the digest not


def _change_entry(entry: dict[str, Any]) -> None:
    entry["recipient"]["name"] = "Somebody Else"  # shown, but not what was anchored


def _other_anchorer(entry: dict[str, Any]) -> None:
    entry["receipt"]["anchorer"] = Account.create().address


PAGE_CASES: dict[str, Callable[[dict[str, Any]], None]] = {
    "changed_document": _change_document,
    "changed_entry": _change_entry,
    "other_anchorer": _other_anchorer,
}
"""Tampering only the page can see (an entry differing from its document) or the auditor too."""


def tamper(accounting: dict[str, Any]) -> dict[str, str]:
    """Tamper one entry per case, in place; returns each tampered entry's record id and its case."""
    entries = [e for section in SECTIONS for e in accounting[section]]
    cases = [c for c in load_cases("receipts") if c["receipt"] and {o["op"] for o in c["receipt"]} <= set(RECEIPT_OPS)]
    tampered: dict[str, str] = {}
    for case in cases:
        needs_proof = any(o["op"] in ("flip_proof", "truncate_proof") for o in case["receipt"])
        fits = (e for e in entries if e["recordId"] not in tampered and (e["receipt"]["proof"] or not needs_proof))
        entry = next(fits, None)
        if entry is None:
            continue  # every receipt with a proof is taken (batches of one have none)
        tamper_receipt(entry["receipt"], case["receipt"])
        tampered[entry["recordId"]] = case["id"]
    for name, change in PAGE_CASES.items():
        entry = next(e for e in entries if e["recordId"] not in tampered)
        change(entry)
        tampered[entry["recordId"]] = name
    assert len(tampered) < len(entries), "some entries stay untouched"
    return tampered


def auditor_verdict(entry: dict[str, Any], service: RunningService, chain: ChainUnderTest, folder: Path) -> str | None:
    """The step `careledger-audit verify` fails for the entry's receipt and document (None: valid)."""
    receipt, document = folder / f"{entry['recordId']}.receipt.json", folder / f"{entry['recordId']}.json"
    receipt.write_text(json.dumps(entry["receipt"]))
    document.write_text(json.dumps(entry["document"]))
    options = ["--receipt", str(receipt), "--document", str(document), "--data-dir", str(service.data_dir)]
    result = runner.invoke(auditor, ["verify", *options, *chain.rpc_options(), "--output", "json"])
    assert result.exit_code in (0, 1), result.output
    verdict: str | None = json.loads(result.stdout[result.stdout.index("{") :])["failingStep"]
    return verdict


def wait_until_anchored(service: RunningService, patient: str, count: int) -> None:
    """Until the trail holds ``count`` attempts about the patient, each anchored (the admin's view)."""
    headers = {"Authorization": f"Bearer {service.admin_key}"}
    deadline = time.monotonic() + 60
    while True:
        trail = httpx.get(f"{service.base}/v1/audit/patients/{patient}", headers=headers, timeout=30)
        entries = trail.json()["entries"]
        if len(entries) == count and all(e["status"] == "anchored" for e in entries):
            return
        assert time.monotonic() < deadline, [e["status"] for e in entries]
        time.sleep(0.2)


def grant(page: Page, organisation: str, scope: str, purpose: str) -> None:
    page.get_by_label("Organisation").select_option(label=organisation)
    page.get_by_label("Which data").select_option(scope)
    page.get_by_label("For what purpose").select_option(purpose)
    page.get_by_role("button", name="Sign and give consent").click()
    status_says(page, f"Consent given to {re.escape(organisation)}")


def download(page: Page, tmp_path: Path, name: str) -> dict[str, Any]:
    """Click "Download my accounting of disclosures"; the downloaded file, once every receipt is checked."""
    page.locator("#accounting-summary").evaluate("summary => { summary.textContent = ''; }")
    with page.expect_download() as downloaded:
        page.get_by_role("button", name="Download my accounting of disclosures").click()
    saved = tmp_path / name
    downloaded.value.save_as(saved)
    assert downloaded.value.suggested_filename.startswith("accounting-of-disclosures-")
    expect(page.locator("#accounting-summary")).to_have_text(re.compile(r"receipts valid"))
    expect(page.locator("#accounting [data-receipt=checking]")).to_have_count(0)
    answer: dict[str, Any] = json.loads(saved.read_text("utf-8"))
    return answer


def test_the_page_downloads_the_accounting_and_checks_every_receipt(
    service: RunningService, browser: Browser, chain_under_test: ChainUnderTest, artifacts: Path, tmp_path: Path
) -> None:
    hospital = make_app(service, "General Hospital", ["reader"])
    lab = make_app(service, "City Lab", ["reader"])
    hostile = make_app(service, HOSTILE_NAME, ["reader"])
    er = make_app(service, "City ER", ["reader", "emergency"], emergency=True)
    context = browser.new_context(viewport={"width": 1000, "height": 1400}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(f"{service.base}/patient/")
    expect(page.locator("body[data-ready=true]")).to_be_attached()
    page.get_by_label("Passphrase (at least 8 characters)").fill(PASSPHRASE)
    page.get_by_label("Passphrase again").fill(PASSPHRASE)
    page.get_by_role("button", name="Create my key").click()
    expect(page.locator("#dashboard")).to_be_visible()
    patient = page.locator("#address").inner_text()
    grant(page, "General Hospital", "Observation", "TREAT")
    grant(page, "City Lab", "*", "HOPERAT")

    attempts = [
        *[(hospital, "", {"scope": "Observation", "purpose": "TREAT"}, 200)] * 4,
        *[(lab, "", {"scope": s, "purpose": "HOPERAT"}, 200) for s in ("Condition", "Observation", "Procedure")],
        (lab, "", {"scope": "Observation", "purpose": "HRESCH"}, 403),
        (hostile, "", {"scope": "Observation", "purpose": "TREAT"}, 403),
        (er, "/emergency", {"scope": "*", "reason": "UNCONSCIOUS"}, 200),
        (lab, "/emergency", {"scope": "*", "reason": "UNCONSCIOUS"}, 403),
        (hospital, "", {"scope": "Condition", "purpose": "TREAT"}, 403),
    ]
    for key, path, body, status in attempts:
        assert access(service, key, patient, path, **body).status_code == status
    wait_until_anchored(service, patient, len(attempts))

    # Downloaded and checked: every receipt valid, and the page says which node it asked.
    accounting = download(page, tmp_path, "accounting.json")
    entries = [e for section in SECTIONS for e in accounting[section]]
    assert (len(accounting["disclosures"]), len(accounting["breakGlass"]), len(accounting["denied"])) == (7, 1, 4)
    expect(page.locator("#accounting [data-receipt=valid]")).to_have_count(len(entries))
    expect(page.locator("#accounting-summary")).to_have_text(f"{len(entries)} of {len(entries)} receipts valid.")
    node = f"the public node {chain_under_test.rpc_url}" if chain_under_test.rpc_url else "the CareLedger service at"
    expect(page.locator("#accounting-node")).to_contain_text(node)
    expect(page.locator("#accounting-denied")).to_contain_text(HOSTILE_NAME)  # as text, never as markup
    assert dialogs == []
    page.screenshot(path=artifacts / "patient-4-accounting.png", full_page=True)

    with page.expect_download() as printable:
        page.get_by_role("button", name="Download the printable page").click()
    assert "Accounting of disclosures" in Path(printable.value.path()).read_text("utf-8")
    with page.expect_download() as fhir:
        page.get_by_role("button", name="Download as FHIR (AuditEvent Bundle)").click()
    bundle = json.loads(Path(fhir.value.path()).read_text("utf-8"))
    assert sorted(e["resource"]["id"] for e in bundle["entry"]) == sorted(e["recordId"] for e in entries)

    # Served tampered: each tampered entry is marked invalid where the auditor fails it; the rest stay valid.
    altered = copy.deepcopy(accounting)
    tampered = tamper(altered)

    def serve_tampered(route: Route) -> None:
        route.fulfill(response=route.fetch(), body=json.dumps(altered), content_type="application/json")

    page.route(re.compile(r".*/v1/patient/0x[0-9a-fA-F]{40}/disclosures\?.*"), serve_tampered)
    assert download(page, tmp_path, "tampered.json") == altered
    for entry in [e for section in SECTIONS for e in altered[section]]:
        item = page.locator(f"#accounting [data-record-id='{entry['recordId']}']")
        case = tampered.get(entry["recordId"])
        if case is None:
            expect(item).to_have_attribute("data-receipt", "valid")
            continue
        expected = "entry" if case == "changed_entry" else auditor_verdict(entry, service, chain_under_test, tmp_path)
        assert expected is not None, case
        expect(item).to_have_attribute("data-receipt", "invalid")
        expect(item).to_have_attribute("data-failing-step", expected)
        expect(item.locator(".receipt-check")).to_contain_text("Receipt INVALID")
    expect(page.locator("#accounting-summary")).to_contain_text(f"{len(tampered)} INVALID")
    page.screenshot(path=artifacts / "patient-5-accounting-tampered.png", full_page=True)
    context.close()
