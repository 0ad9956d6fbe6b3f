"""A document's digest is that of the text sent: the API and the auditor parse it with the one strict
parser, agree on every digest, and refuse the same texts (duplicate keys, numbers a double would
round), in registration, bulk registration and public verification alike."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.service import Service
from ledger.auditor.cli import EXIT_UNCHECKED, EXIT_VALID, app
from ledger.config import Settings
from ledger.records.hashing import digest_json
from ledger.store.apps import Role
from tests.api.conftest import PATIENT, MakeApp
from tests.support.chain_under_test import ChainUnderTest

runner = CliRunner()
JSON = {"content-type": "application/json"}

# Texts a lax parser reads as another document: (registered text, a different text with its digest under orjson).
LOOK_ALIKES = [
    ('{"dose": 1}', '{"dose": 5, "dose": 1}'),  # orjson keeps the last duplicate
    ('{"n": 18446744073709551616}', '{"n": 18446744073709551617}'),  # orjson rounds both to 2**64
    ('{"v": 0.1}', '{"v": 0.10000000000000000001}'),
]
REFUSED = [
    ('{"dose": 5, "dose": 1}', "duplicate_key"),
    ('{"n": 18446744073709551617}', "inexact_number"),
    ('{"n": 9007199254740993}', "inexact_number"),
    ('{"v": 0.10000000000000000001}', "inexact_number"),
    ('{"s": "\\ud800"}', "invalid_document"),
]
ACCEPTED = [
    '{"b": [1.50, 1e2, -0], "a": "\\u00e9"}',  # other spellings of {"a": "é", "b": [1.5, 100, 0]}
    '{"n": 18446744073709551616, "m": 9007199254740992}',  # integers a double holds exactly
    '{"resourceType": "Basic", "code": {"text": "note"}, "extension": []}',
]


def record_body(document_text: str) -> bytes:
    return f'{{"patient": "{PATIENT}", "contentType": "application/json", "document": {document_text}}}'.encode()


@pytest.fixture
def registrar(make_app: MakeApp) -> dict[str, str]:
    headers, _ = make_app({Role.REGISTRAR, Role.READER})
    return headers


@pytest.mark.parametrize(("text", "code"), REFUSED)
def test_lax_documents_are_refused_everywhere(
    client: TestClient, registrar: dict[str, str], service: Service, tmp_path: Path, text: str, code: str
) -> None:
    single = client.post("/v1/records", content=record_body(text), headers={**registrar, **JSON})
    assert (single.status_code, single.json()["code"]) == (400, code), single.text
    bulk_text = f'{{"records": [{{"patient": "{PATIENT}", "digest": "0x{"11" * 32}"}}, {record_body(text).decode()}]}}'
    bulk = client.post("/v1/records/bulk", content=bulk_text.encode(), headers={**registrar, **JSON})
    assert (bulk.status_code, bulk.json()["code"]) == (400, code), bulk.text
    verified = client.post("/v1/verify", content=f'{{"document": {text}}}'.encode(), headers=JSON)
    assert (verified.status_code, verified.json()["code"]) == (400, code), verified.text
    assert service.db.conn.execute("SELECT COUNT(*) FROM records").fetchone()[0] == 0
    document = tmp_path / "document.json"
    document.write_text(text)
    receipt = tmp_path / "receipt.json"
    receipt.write_text("{}")
    refused = runner.invoke(app, ["verify", "--receipt", str(receipt), "--document", str(document)])
    assert refused.exit_code == EXIT_UNCHECKED, refused.output  # the auditor cannot hash it either


@pytest.mark.parametrize(("registered", "other"), LOOK_ALIKES)
def test_verify_never_matches_a_document_that_was_not_registered(
    client: TestClient, registrar: dict[str, str], registered: str, other: str
) -> None:
    ack = client.post("/v1/records", content=record_body(registered), headers={**registrar, **JSON})
    assert ack.status_code == 202, ack.text
    anchored = client.get(
        f"/v1/records/{ack.json()['recordId']}/receipt", params={"wait": "true", "timeout": 20}, headers=registrar
    )
    assert anchored.status_code == 200, anchored.text
    receipt = anchored.text
    same = client.post(
        "/v1/verify", content=f'{{"receipt": {receipt}, "document": {registered}}}'.encode(), headers=JSON
    )
    assert same.status_code == 200 and same.json()["match"] and same.json()["digest"] == ack.json()["digest"]
    lookalike = client.post(
        "/v1/verify", content=f'{{"receipt": {receipt}, "document": {other}}}'.encode(), headers=JSON
    )
    assert lookalike.status_code == 400, lookalike.text  # refused, where a lax parser said "match": true
    looked_up = client.post(
        "/v1/verify/lookup", content=f'{{"document": {other}}}'.encode(), headers={**registrar, **JSON}
    )
    assert looked_up.status_code == 400, looked_up.text


def test_the_api_and_the_auditor_agree_on_every_digest(
    client: TestClient,
    registrar: dict[str, str],
    tmp_path: Path,
    api_settings: Settings,
    chain_under_test: ChainUnderTest,
) -> None:
    data_dir = str(api_settings.data_dir)
    for index, text in enumerate(ACCEPTED):
        ack = client.post("/v1/records", content=record_body(text), headers={**registrar, **JSON})
        assert ack.status_code == 202, ack.text
        assert ack.json()["digest"] == "0x" + digest_json(text.encode()).hex()
        response = client.get(
            f"/v1/records/{ack.json()['recordId']}/receipt", params={"wait": "true", "timeout": 20}, headers=registrar
        )
        assert response.status_code == 200, response.text
        receipt, document = tmp_path / f"receipt-{index}.json", tmp_path / f"document-{index}.json"
        receipt.write_text(json.dumps(response.json()))
        document.write_text(text)
        audited = runner.invoke(
            app,
            [
                "verify",
                "--receipt",
                str(receipt),
                "--document",
                str(document),
                "--data-dir",
                data_dir,
                *chain_under_test.rpc_options(),
            ],
        )
        assert audited.exit_code == EXIT_VALID, audited.output
