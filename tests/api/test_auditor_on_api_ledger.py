"""The auditor on a ledger built through the API: clean while the service runs, and every index
tamper case (``tests/testdata/auditor/index/``) reported by name.

The service keeps running (writer open, batcher and indexer threads alive) while the auditor reads
the chain (the embedded one READ-ONLY from the same data directory) and a copy of the index.
"""

from __future__ import annotations

import base64
import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.service import Service
from ledger.auditor.chain_reader import open_reader
from ledger.auditor.cli import app
from ledger.auditor.index_check import reconcile
from ledger.auditor.replay import replay
from ledger.config import Settings
from ledger.records.hashing import canonical_json
from ledger.store.apps import Role
from ledger.store.export import export_index
from tests.api.conftest import MakeApp
from tests.api.test_consent_api import relay, signed_grant, signed_revocation
from tests.ledger.auditor.conftest import load_cases
from tests.support.chain_under_test import ChainUnderTest

runner = CliRunner()
INDEX_CASES = load_cases("index")
DOCUMENTS = [
    {
        "resourceType": "Observation",
        "status": "final",
        "id": str(i),
        "code": {"text": "heart rate"},
        "valueQuantity": {"value": 60 + i, "unit": "/min"},
    }
    for i in range(3)
]
PDF = b"%PDF-1.7 referral letter"


def receipt_of(client: TestClient, headers: dict[str, str], record_id: str) -> dict[str, Any]:
    response = client.get(f"/v1/records/{record_id}/receipt", params={"wait": "true", "timeout": 20}, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def build_ledger(client: TestClient, service: Service, make_app: MakeApp, folder: Path) -> None:
    """Records (JSON and raw), a grant, an allowed and a denied access, a revocation and a break-glass
    access, all through the API; each receipt written to ``folder`` beside its document."""
    headers, org = make_app({Role.REGISTRAR, Role.READER, Role.RELAYER})
    er_headers, _ = make_app({Role.EMERGENCY, Role.READER}, organisation="City ER", emergency=True)
    patient: LocalAccount = Account.create()
    documents: dict[str, tuple[dict[str, str], bytes, str]] = {}
    for document in DOCUMENTS:
        ack = client.post("/v1/records", json={"patient": patient.address, "document": document}, headers=headers)
        assert ack.status_code == 202, ack.text
        documents[ack.json()["recordId"]] = (headers, canonical_json(document), ".json")
    pdf = {"patient": patient.address, "contentType": "application/pdf", "content": base64.b64encode(PDF).decode()}
    ack = client.post("/v1/records", headers=headers, json=pdf)
    documents[ack.json()["recordId"]] = (headers, PDF, ".bin")

    relay(client, headers, "grants", signed_grant(service, patient, org.address))
    allowed = client.post(
        "/v1/access", headers=headers, json={"patient": patient.address, "scope": "Observation", "purpose": "TREAT"}
    )
    assert allowed.status_code == 200, allowed.text
    relay(client, headers, "revocations", signed_revocation(service, patient, org.address))
    denied = client.post(
        "/v1/access", headers=headers, json={"patient": patient.address, "scope": "Observation", "purpose": "TREAT"}
    )
    assert denied.status_code == 403
    glass = client.post(
        "/v1/access/emergency",
        headers=er_headers,
        json={"patient": patient.address, "scope": "*", "reason": "UNCONSCIOUS"},
    )
    assert glass.status_code == 200, glass.text
    audit_ids = [
        (headers, allowed.json()["auditRecordId"]),
        (headers, denied.json()["details"]["audit_record_id"]),
        (er_headers, glass.json()["auditRecordId"]),
    ]
    for record_id, (owner, content, suffix) in documents.items():
        (folder / f"{record_id}.receipt.json").write_text(json.dumps(receipt_of(client, owner, record_id)))
        (folder / f"{record_id}{suffix}").write_bytes(content)
    for owner, record_id in audit_ids:
        (folder / f"{record_id}.receipt.json").write_text(json.dumps(receipt_of(client, owner, record_id)))
    # The record's own anchorer changes two of them: one retracted, one amended (its correction anchored
    # first, then the amendment): changes the auditor's rule checks must find sound.
    first, second = list(documents)[:2]
    retracted = client.post(f"/v1/records/{first}/retract", json={"reason": "ENTERED_IN_ERROR"}, headers=headers)
    assert retracted.status_code == 202, retracted.text
    correction = {**DOCUMENTS[1], "valueQuantity": {"value": 99, "unit": "/min"}}
    amended = client.post(
        f"/v1/records/{second}/amend", json={"patient": patient.address, "document": correction}, headers=headers
    )
    assert amended.status_code == 202, amended.text
    receipt_of(client, headers, amended.json()["recordId"])
    for _ in range(3):
        service.batcher.run_once()
    assert client.get(f"/v1/records/{first}", headers=headers).json()["retraction"]["state"] == "done"
    assert client.get(f"/v1/records/{second}", headers=headers).json()["amendedBy"] == amended.json()["recordId"]
    service.indexer.sync()


def copy_index(service: Service, target: Path) -> Path:
    """A consistent copy of the live index, as an operator takes it (`careledger export-index`), from
    the store under test (SQLite or PostgreSQL)."""
    export_index(service.db, target)
    return target


def test_auditing_an_api_built_ledger_while_it_runs(
    client: TestClient,
    service: Service,
    make_app: MakeApp,
    api_settings: Settings,
    tmp_path: Path,
    chain_under_test: ChainUnderTest,
) -> None:
    folder = tmp_path / "receipts"
    folder.mkdir()
    build_ledger(client, service, make_app, folder)
    index = copy_index(service, tmp_path / "index.sqlite3")
    data_dir = str(api_settings.data_dir)
    chain = ["--data-dir", data_dir, *chain_under_test.rpc_options()]

    result = runner.invoke(
        app,
        [
            "audit",
            *chain,
            "--index",
            str(index),
            "--json",
            str(tmp_path / "audit.json"),
            "--html",
            str(tmp_path / "audit.html"),
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "audit.json").read_text())
    assert report["verdict"] == "clean" and report["discrepancies"] == []
    assert report["events"]["ConsentGranted"] == report["events"]["ConsentRevoked"] == 1
    assert [(b["scope"], b["reason"]) for b in report["breakGlass"]] == [("*", "UNCONSCIOUS")]
    assert report["anchoring"]["records"] == report["index"]["recordsChecked"] == 8
    assert (len(report["amendments"]), len(report["retractions"])) == (1, 1)
    assert report["consents"]["states"] == {"revoked": 1}
    page = (tmp_path / "audit.html").read_text()
    assert "<svg" in page and "no discrepancies" in page and "<link" not in page and "<script" not in page

    result = runner.invoke(app, ["verify-receipts", str(folder), *chain, "--report", str(tmp_path / "receipts.json")])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "receipts.json").read_text())["summary"]
    assert (summary["receipts"], summary["valid"], summary["withDocuments"]) == (7, 7, 4)

    with open_reader(rpc_url=chain_under_test.rpc_url, data_dir=api_settings.data_dir) as reader:
        history = replay(reader)
        head = reader.head
    for case in INDEX_CASES:
        tampered = shutil.copy(index, tmp_path / f"{case['id']}.sqlite3")
        with sqlite3.connect(tampered) as conn:
            for statement in case["sql"]:
                assert conn.execute(statement).rowcount > 0, (case["id"], statement)
        found, _ = reconcile(Path(tampered), history, head)
        assert sorted({d.kind for d in found}) == sorted(case["expect"]), (case["id"], found)

    forged = tmp_path / "record_the_chain_never_saw.sqlite3"
    result = runner.invoke(app, ["audit", *chain, "--index", str(forged)])
    assert result.exit_code == 1 and "record_not_in_batch" in result.output
