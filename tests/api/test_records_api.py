"""Registering records over HTTP, their receipts, amendments, retractions and idempotency."""

from __future__ import annotations

import base64
import threading
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.rate_limit import RateLimiter
from api.service import Service
from ledger.records.hashing import digest_bytes, digest_json
from ledger.records.receipts import Receipt, receipt_schema, verify_receipt
from ledger.store.apps import Role
from ledger.store.database import with_tx
from ledger.store.idempotency import purge_statement
from tests.api.conftest import PATIENT, MakeApp

DOC = {
    "resourceType": "Observation",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
    "valueQuantity": {"value": 72, "unit": "/min"},
}


def receipt_of(client: TestClient, headers: dict[str, str], record_id: str) -> dict[str, Any]:
    response = client.get(f"/v1/records/{record_id}/receipt", params={"wait": "true", "timeout": 20}, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
def registrar(make_app: MakeApp) -> dict[str, str]:
    headers, _ = make_app({Role.REGISTRAR})
    return headers


def test_register_document_content_and_digest_then_verify_receipts(
    client: TestClient, registrar: dict[str, str], service: Service
) -> None:
    pdf = b"%PDF-1.7 discharge letter"
    bodies = [
        {"patient": PATIENT, "document": DOC, "metadata": {"ward": 7}},
        {"patient": PATIENT, "content": base64.b64encode(pdf).decode(), "contentType": "application/pdf"},
        {"patient": PATIENT, "digest": "0x" + digest_bytes(b"precomputed").hex()},
    ]
    expected = [digest_json(DOC), digest_bytes(pdf), digest_bytes(b"precomputed")]
    for body, digest in zip(bodies, expected, strict=True):
        response = client.post("/v1/records", json=body, headers=registrar)
        assert response.status_code == 202, response.text
        ack = response.json()
        assert ack["digest"] == "0x" + digest.hex() and ack["status"] == "pending"
        receipt = Receipt.parse(receipt_of(client, registrar, ack["recordId"]))
        assert receipt.digest == digest
        assert verify_receipt(receipt, document_digest=digest, anchors=service.ledger.anchors).valid
        by_digest = client.get("/v1/receipts", params={"digest": ack["digest"]}, headers=registrar).json()
        assert Receipt.parse(by_digest[0]) == receipt
        record = client.get(f"/v1/records/{ack['recordId']}", headers=registrar).json()
        assert (
            record["status"] == "anchored"
            and record["batch"]["transactionHash"] == "0x" + receipt.transaction_hash.hex()
        )
    assert client.get(
        f"/v1/records/{client.post('/v1/records', json=bodies[0], headers=registrar).json()['recordId']}",
        headers=registrar,
    ).json()["metadata"] == {"ward": 7}


def test_bulk_registration_is_one_batch_with_a_receipt_each(client: TestClient, registrar: dict[str, str]) -> None:
    records = [{"patient": PATIENT, "digest": "0x" + digest_bytes(b"%d" % i).hex()} for i in range(300)]
    response = client.post("/v1/records/bulk", json={"records": records}, headers=registrar)
    assert response.status_code == 202, response.text
    acks = response.json()["records"]
    assert response.json()["count"] == 300 and len({a["recordId"] for a in acks}) == 300
    receipts = [Receipt.parse(receipt_of(client, registrar, a["recordId"])) for a in acks[::37]]
    assert len({r.root for r in receipts}) == 1 and receipts[0].leaf_count == 300


def test_bulk_is_all_or_nothing(client: TestClient, registrar: dict[str, str], service: Service) -> None:
    records = [{"patient": PATIENT, "digest": "0x" + "11" * 32}, {"patient": PATIENT, "content": "***not base64"}]
    response = client.post("/v1/records/bulk", json={"records": records}, headers=registrar)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_input" and response.json()["details"]["index"] == 1
    assert service.db.conn.execute("SELECT COUNT(*) FROM records").fetchone()[0] == 0


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"patient": PATIENT}, 422, "invalid_request"),
        ({"patient": PATIENT, "digest": "0x" + "11" * 32, "document": DOC}, 422, "invalid_request"),
        ({"patient": "0x1234", "digest": "0x" + "11" * 32}, 422, "invalid_request"),
        ({"patient": PATIENT, "digest": "0x" + "zz" * 32}, 422, "invalid_request"),
        ({"patient": PATIENT, "digest": "0x" + "11" * 31}, 422, "invalid_request"),
        ({"patient": PATIENT, "digest": "0x" + "11" * 32, "unknown": 1}, 422, "invalid_request"),
        ({"patient": PATIENT, "content": "%%%"}, 400, "invalid_input"),
        ({"patient": PATIENT, "digest": "0x" + "11" * 32, "metadata": {"x": "y" * 5000}}, 413, "payload_too_large"),
        ({"patient": PATIENT, "document": {"value": float("inf")}}, 422, "invalid_request"),
    ],
)
def test_bad_records_get_a_4xx_with_a_code(
    client: TestClient, registrar: dict[str, str], service: Service, body: dict[str, Any], status: int, code: str
) -> None:
    if body.get("document", {}).get("value") == float("inf"):
        response = client.post(
            "/v1/records",
            content=b'{"patient":"%s","document":{"v":NaN}}' % PATIENT.encode(),
            headers={**registrar, "content-type": "application/json"},
        )
    else:
        response = client.post("/v1/records", json=body, headers=registrar)
    assert (response.status_code, response.json()["code"]) == (status, code), response.text
    assert set(response.json()) == {"code", "message", "details"}
    assert service.db.conn.execute("SELECT COUNT(*) FROM records").fetchone()[0] == 0


def test_fhir_documents_are_validated(client: TestClient, registrar: dict[str, str]) -> None:
    invalid = {"resourceType": "Observation", "status": "not-a-status"}
    response = client.post("/v1/records", json={"patient": PATIENT, "document": invalid}, headers=registrar)
    assert response.status_code == 400 and response.json()["code"] == "invalid_fhir"
    assert {e["field"] for e in response.json()["details"]["errors"]} >= {"code"}
    unknown = client.post(
        "/v1/records", json={"patient": PATIENT, "document": {"resourceType": "Spaceship"}}, headers=registrar
    )
    assert unknown.status_code == 400 and unknown.json()["code"] == "invalid_fhir"
    as_plain_json = client.post(
        "/v1/records",
        json={"patient": PATIENT, "document": invalid, "contentType": "application/json"},
        headers=registrar,
    )
    assert as_plain_json.status_code == 202


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{not json",
        b"[]",
        b'{"records": {}}',
        b'{"records": []}',
        b'{"records": [1]}',
        b'{"records": [{"patient": 1, "digest": 2}]}',
    ],
)
def test_malformed_bulk_bodies_are_422(client: TestClient, registrar: dict[str, str], body: bytes) -> None:
    response = client.post("/v1/records/bulk", content=body, headers={**registrar, "content-type": "application/json"})
    assert response.status_code == 422 and response.json()["code"] == "invalid_request", response.text


@pytest.mark.parametrize("depth", [600, 200_000])
def test_deeply_nested_json_is_refused_not_a_crash(client: TestClient, registrar: dict[str, str], depth: int) -> None:
    body = b'{"patient":"%s","document":' % PATIENT.encode() + b"[" * depth + b"]" * depth + b"}"
    response = client.post("/v1/records", content=body, headers={**registrar, "content-type": "application/json"})
    assert (response.status_code, response.json()["code"]) == (400, "nesting_too_deep"), response.text
    assert client.get("/healthz").status_code == 200


def test_body_over_the_limit_is_413(client: TestClient, registrar: dict[str, str], service: Service) -> None:
    limit = service.settings.max_body_bytes
    response = client.post(
        "/v1/records", content=b"x" * (limit + 1), headers={**registrar, "content-type": "application/json"}
    )
    assert response.status_code == 413 and response.json()["code"] == "payload_too_large"


def test_roles_and_keys(client: TestClient, make_app: MakeApp, service: Service) -> None:
    reader, _ = make_app({Role.READER})
    body = {"patient": PATIENT, "digest": "0x" + "22" * 32}
    assert client.post("/v1/records", json=body).json()["code"] == "unauthenticated"
    assert client.post("/v1/records", json=body, headers={"Authorization": "Bearer clk_nope"}).status_code == 401
    denied = client.post("/v1/records", json=body, headers=reader)
    assert denied.status_code == 403 and denied.json()["code"] == "forbidden"
    registrar, _ = make_app({Role.REGISTRAR})
    assert (
        client.post("/v1/records", json=body, headers={"X-API-Key": registrar["Authorization"][7:]}).status_code == 202
    )


def test_other_organisations_cannot_see_a_record(client: TestClient, make_app: MakeApp) -> None:
    mine, _ = make_app({Role.REGISTRAR}, organisation="North Clinic")
    theirs, _ = make_app({Role.REGISTRAR, Role.READER}, organisation="South Clinic")
    record_id = client.post("/v1/records", json={"patient": PATIENT, "document": DOC}, headers=mine).json()["recordId"]
    for path in (f"/v1/records/{record_id}", f"/v1/records/{record_id}/receipt"):
        assert client.get(path, headers=theirs).json()["code"] == "not_found"
    assert client.get("/v1/records", params={"digest": "0x" + digest_json(DOC).hex()}, headers=theirs).json() == []
    assert len(client.get("/v1/records", params={"digest": "0x" + digest_json(DOC).hex()}, headers=mine).json()) == 1
    assert client.get("/v1/receipts", params={"digest": "0x" + digest_json(DOC).hex()}, headers=theirs).json() == []


def test_idempotency_key_returns_the_first_answer_and_writes_once(
    client: TestClient, registrar: dict[str, str], service: Service
) -> None:
    headers = {**registrar, "Idempotency-Key": "order-42"}
    body = {"patient": PATIENT, "document": DOC}
    first = client.post("/v1/records", json=body, headers=headers)
    again = client.post("/v1/records", json=body, headers=headers)
    assert first.status_code == again.status_code == 202 and first.json() == again.json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    other = client.post("/v1/records", json={**body, "metadata": {"changed": True}}, headers=headers)
    assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reused")  # the draft's 422
    assert service.db.conn.execute("SELECT COUNT(*) FROM records").fetchone()[0] == 1


def test_an_expired_idempotency_key_is_new_again(
    client: TestClient, registrar: dict[str, str], service: Service
) -> None:
    assert service.settings.idempotency_key_ttl == 86_400  # a day by default
    headers = {**registrar, "Idempotency-Key": "order-43"}
    body = {"patient": PATIENT, "digest": "0x" + "43" * 32}
    first = client.post("/v1/records", json=body, headers=headers)
    assert first.status_code == 202
    age = service.settings.idempotency_key_ttl + 1  # the stored answer is now a day and a second old
    with_tx(
        service.db.conn,
        lambda: service.db.conn.execute("UPDATE idempotency_keys SET created_at = created_at - ?", (age,)),
    )
    again = client.post("/v1/records", json=body, headers=headers)
    assert again.status_code == 202 and "Idempotent-Replayed" not in again.headers
    assert again.json()["recordId"] != first.json()["recordId"]
    other = client.post("/v1/records", json={**body, "metadata": {"changed": True}}, headers=headers)
    assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reused")  # the new answer is live
    replayed = client.post("/v1/records", json=body, headers=headers)
    assert replayed.headers.get("Idempotent-Replayed") == "true" and replayed.json() == again.json()
    assert service.db.conn.execute("SELECT COUNT(*) FROM records").fetchone()[0] == 2
    assert service.db.conn.execute("SELECT COUNT(*) FROM idempotency_keys").fetchone()[0] == 1
    expired_before = time.time() - service.settings.idempotency_key_ttl
    assert client.portal is not None
    client.portal.call(service.intake.submit, [purge_statement(expired_before)])  # what the hourly purge runs
    assert service.db.conn.execute("SELECT COUNT(*) FROM idempotency_keys").fetchone()[0] == 1  # still live
    client.portal.call(service.intake.submit, [purge_statement(time.time() + 1)])
    assert service.db.conn.execute("SELECT COUNT(*) FROM idempotency_keys").fetchone()[0] == 0


def test_concurrent_requests_with_one_idempotency_key_register_once(
    client: TestClient, registrar: dict[str, str], service: Service
) -> None:
    """Eight requests with one key at once: every one is answered 202 with the same body, exactly
    one of them is the first answer (the others are replays), and the records are written once."""
    headers = {**registrar, "Idempotency-Key": "burst"}
    answers: list[tuple[int, Any, str | None]] = []
    failures: list[BaseException] = []
    lock = threading.Lock()

    def post() -> None:
        try:
            response = client.post(
                "/v1/records/bulk", json={"records": [{"patient": PATIENT, "document": DOC}] * 5}, headers=headers
            )
            with lock:
                answers.append((response.status_code, response.json(), response.headers.get("Idempotent-Replayed")))
        except BaseException as err:  # a thread's failure must reach the test
            with lock:
                failures.append(err)

    threads = [threading.Thread(target=post) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads)
    assert not failures, failures
    assert len(answers) == 8
    assert [status for status, _, _ in answers] == [202] * 8, answers
    assert all(body == answers[0][1] for _, body, _ in answers)
    assert sorted(str(replayed) for _, _, replayed in answers) == ["None"] + ["true"] * 7
    assert service.db.conn.execute("SELECT COUNT(*) FROM records").fetchone()[0] == 5


def test_amend_and_retract_reach_the_chain(client: TestClient, make_app: MakeApp, service: Service) -> None:
    headers, _ = make_app({Role.REGISTRAR, Role.READER})
    original = client.post("/v1/records", json={"patient": PATIENT, "document": DOC}, headers=headers).json()
    corrected_doc = {**DOC, "valueQuantity": {"value": 74, "unit": "/min"}}
    amended = client.post(
        f"/v1/records/{original['recordId']}/amend",
        json={"patient": PATIENT, "document": corrected_doc},
        headers=headers,
    )
    assert amended.status_code == 202 and amended.json()["amends"] == original["recordId"]
    second = client.post(
        f"/v1/records/{original['recordId']}/amend", json={"patient": PATIENT, "document": DOC}, headers=headers
    )
    assert second.status_code == 409
    wrong = client.post("/v1/records", json={"patient": PATIENT, "digest": "0x" + "33" * 32}, headers=headers).json()
    assert (
        client.post(
            f"/v1/records/{wrong['recordId']}/retract", json={"reason": "bad code!"}, headers=headers
        ).status_code
        == 422
    )
    assert (
        client.post(
            f"/v1/records/{wrong['recordId']}/retract", json={"reason": "ENTERED_IN_ERROR"}, headers=headers
        ).status_code
        == 202
    )
    for record_id in (original["recordId"], amended.json()["recordId"], wrong["recordId"]):
        receipt_of(client, headers, record_id)
    service.batcher.run_once()  # apply the changes now that everything is anchored
    original_receipt = Receipt.parse(receipt_of(client, headers, original["recordId"]))
    corrected_receipt = Receipt.parse(receipt_of(client, headers, amended.json()["recordId"]))
    check = verify_receipt(original_receipt, anchors=service.ledger.anchors)
    assert check.valid and check.amended_by == "0x" + corrected_receipt.leaf.hex()
    verdict = client.post("/v1/verify", json={"receipt": receipt_of(client, headers, wrong["recordId"])}).json()
    assert verdict["match"] and verdict["retracted"] and verdict["retractionReason"] == "ENTERED_IN_ERROR"
    record = client.get(f"/v1/records/{wrong['recordId']}", headers=headers).json()
    assert record["retraction"]["state"] == "done" and record["retraction"]["transactionHash"]


def test_public_verification(client: TestClient, registrar: dict[str, str]) -> None:
    record_id = client.post("/v1/records", json={"patient": PATIENT, "document": DOC}, headers=registrar).json()[
        "recordId"
    ]
    receipt = receipt_of(client, registrar, record_id)
    full = client.post("/v1/verify", json={"receipt": receipt, "document": DOC}).json()
    assert full["match"] and full["mismatches"] == [] and full["organisation"] == "General Hospital"
    tampered = client.post("/v1/verify", json={"receipt": receipt, "document": {**DOC, "status": "amended"}}).json()
    assert not tampered["match"] and tampered["mismatches"] == ["digest"]
    forged = {**receipt, "root": "0x" + "55" * 32}
    assert client.post("/v1/verify", json={"receipt": forged}).json()["mismatches"] == ["proof", "anchored"]
    malformed = client.post("/v1/verify", json={"receipt": {**receipt, "proof": "nope"}})
    assert malformed.status_code == 400 and malformed.json()["code"] == "invalid_proof"


def test_public_verification_is_no_confirmation_oracle(
    client: TestClient, registrar: dict[str, str], make_app: MakeApp
) -> None:
    """Without a receipt (which carries the salt) nobody confirms a guessed document: public verify
    refuses a bare document or digest, and the authenticated lookup searches the caller's own
    organisation only, so another organisation's key learns nothing either."""
    record_id = client.post("/v1/records", json={"patient": PATIENT, "document": DOC}, headers=registrar).json()[
        "recordId"
    ]
    receipt = receipt_of(client, registrar, record_id)
    for guess in ({"document": DOC}, {"digest": receipt["digest"]}):
        refused = client.post("/v1/verify", json=guess)
        assert (refused.status_code, refused.json()["code"]) == (422, "invalid_request"), refused.text
        assert "General Hospital" not in refused.text
        anonymous = client.post("/v1/verify/lookup", json=guess)
        assert (anonymous.status_code, anonymous.json()["code"]) == (401, "unauthenticated")
    other, _ = make_app({Role.READER, Role.REGISTRAR}, organisation="Other Clinic")
    by_other = client.post("/v1/verify/lookup", json={"document": DOC}, headers=other).json()
    assert by_other == {
        "match": False,
        "digest": receipt["digest"],
        "anchored": False,
        "anchorings": [],
        "message": "no record of this organisation has this digest",
    }
    own = client.post("/v1/verify/lookup", json={"document": dict(reversed(list(DOC.items())))}, headers=registrar)
    assert own.json()["match"] and own.json()["anchorings"][0]["organisation"] == "General Hospital"


def test_public_verification_is_rate_limited_per_client(client: TestClient, registrar: dict[str, str]) -> None:
    record_id = client.post("/v1/records", json={"patient": PATIENT, "digest": "0x" + "45" * 32}, headers=registrar)
    receipt = receipt_of(client, registrar, record_id.json()["recordId"])
    client.app.state.verify_limit = RateLimiter(3, 60.0, "client")  # type: ignore[attr-defined]
    answers = [client.post("/v1/verify", json={"receipt": receipt}) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[-1].json()["code"] == "rate_limited" and int(answers[-1].headers["Retry-After"]) >= 1


def test_verify_answers_in_full(client: TestClient, registrar: dict[str, str], service: Service) -> None:
    """The whole answer of ``POST /v1/verify`` (with a receipt) and of ``POST /v1/verify/lookup`` (by
    raw content, anchored; a record still pending; content that is not base64)."""
    pdf = b"%PDF-1.7 verify me"
    content = base64.b64encode(pdf).decode()
    record = {"patient": PATIENT, "content": content, "contentType": "application/pdf"}
    receipt = receipt_of(
        client, registrar, client.post("/v1/records", json=record, headers=registrar).json()["recordId"]
    )
    anchoring = {
        "anchored": True,
        "organisation": "General Hospital",
        "anchorer": receipt["anchorer"],
        "anchoredAt": receipt["anchoredAt"],
        "blockNumber": receipt["blockNumber"],
        "transactionHash": receipt["transactionHash"],
        "root": receipt["root"],
        "amendedBy": None,
        "retracted": False,
        "retractionReason": None,
    }
    assert client.post("/v1/verify/lookup", json={"content": content}, headers=registrar).json() == {
        "match": True,
        "digest": receipt["digest"],
        "anchored": True,
        "anchorings": [anchoring],
        "message": "anchored",
    }
    full = client.post("/v1/verify", json={"receipt": receipt, "content": content}).json()
    checks = {c["step"]: (c["ok"], c["expected"], c["actual"]) for c in full.pop("checks")}
    assert full == {
        "match": True,
        "digest": receipt["digest"],
        "anchored": True,
        "mismatches": [],
        "anchoredAt": receipt["anchoredAt"],
        "organisation": "General Hospital",
        "amendedBy": None,
        "retracted": False,
        "retractionReason": None,
    }
    chain_id = service.ledger.chain.chain_id
    assert checks == {
        "digest": (True, receipt["digest"], receipt["digest"]),
        "leaf": (True, receipt["leaf"], receipt["leaf"]),
        "proof": (True, receipt["root"], receipt["root"]),
        "chain": (True, str(chain_id), str(chain_id)),
        "contract": (True, receipt["contract"], receipt["contract"]),
        "anchored": (True, receipt["root"], None),
        "anchorer_role": (
            True,
            f"{receipt['anchorer']} holding ANCHORER_ROLE at block {receipt['blockNumber']}",
            "held",
        ),
        "block": (True, str(receipt["blockNumber"]), str(receipt["blockNumber"])),
        "anchorer": (True, receipt["anchorer"], receipt["anchorer"]),
        "time": (True, str(receipt["anchoredAt"]), str(receipt["anchoredAt"])),
        "transaction": (True, receipt["transactionHash"], receipt["transactionHash"]),
        "leaf_count": (True, str(receipt["leafCount"]), str(receipt["leafCount"])),
    }
    service.batcher.stop()
    digest = "0x" + "66" * 32
    client.post("/v1/records", json={"patient": PATIENT, "digest": digest}, headers=registrar)
    assert client.post("/v1/verify/lookup", json={"digest": digest}, headers=registrar).json() == {
        "match": False,
        "digest": digest,
        "anchored": False,
        "anchorings": [{"anchored": False, "status": "pending"}],
        "message": "registered, not anchored yet",
    }
    not_base64 = client.post("/v1/verify/lookup", json={"content": "%%%"}, headers=registrar)
    assert (not_base64.status_code, not_base64.json()["code"]) == (400, "invalid_input")
    assert not_base64.json()["details"]["field"] == "content"


def test_receipt_is_pending_until_anchored(
    api_settings: Any, make_app: MakeApp, client: TestClient, service: Service
) -> None:
    service.batcher.stop()
    headers, _ = make_app({Role.REGISTRAR})
    record_id = client.post("/v1/records", json={"patient": PATIENT, "document": DOC}, headers=headers).json()[
        "recordId"
    ]
    pending = client.get(f"/v1/records/{record_id}/receipt", headers=headers)
    assert pending.status_code == 202 and pending.json() == {"recordId": record_id, "status": "pending"}
    service.batcher.run_once(force=True)
    assert client.get(f"/v1/records/{record_id}/receipt", headers=headers).status_code == 200


@pytest.mark.parametrize(
    ("change", "step"),
    [
        ({"transactionHash": "0x" + "77" * 32}, "transaction"),
        ({"leafCount": 2}, "leaf_count"),
        ({"blockNumber": 1}, "anchorer_role"),
        ({"anchorer": "0x8ba1f109551bD432803012645Ac136ddd64DBA72"}, "anchored"),
    ],
    ids=["transaction hash", "leaf count", "block", "anchorer"],
)
def test_public_verify_checks_every_claim_of_a_receipt(
    client: TestClient, registrar: dict[str, str], change: dict[str, Any], step: str
) -> None:
    """A receipt whose transaction hash, leaf count, block or anchorer was altered does not verify:
    the API checks every claim, as the auditor does (it used to say match: true for the first two)."""
    record_id = client.post("/v1/records", json={"patient": PATIENT, "digest": "0x" + "46" * 32}, headers=registrar)
    receipt = receipt_of(client, registrar, record_id.json()["recordId"])
    assert client.post("/v1/verify", json={"receipt": receipt}).json()["match"]
    verdict = client.post("/v1/verify", json={"receipt": {**receipt, **change}}).json()
    assert not verdict["match"] and step in verdict["mismatches"], verdict["mismatches"]


def test_the_api_serves_the_schema(client: TestClient) -> None:
    served = client.get("/v1/receipts/schema")
    assert served.status_code == 200 and served.headers["content-type"].startswith("application/schema+json")
    assert served.json() == receipt_schema()
