"""Request limits: body size per route (declared or chunked), JSON values and nesting, and inputs that
once became 500s (a record id past 2**63 - 1, metadata nested 255+ levels, a non-ASCII session token)."""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest
from fastapi.testclient import TestClient

from api.registration import MAX_METADATA_DEPTH
from api.service import Service
from ledger.config import DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_BULK_BODY_BYTES
from ledger.store.apps import Role
from tests.api.conftest import PATIENT, MakeApp

JSON = {"content-type": "application/json"}


@pytest.fixture
def registrar(make_app: MakeApp) -> dict[str, str]:
    headers, _ = make_app({Role.REGISTRAR, Role.READER})
    return headers


def padded_record(size: int) -> bytes:
    """A record body of exactly ``size`` bytes (a document with one long string)."""
    head = b'{"patient":"%s","contentType":"application/json","document":{"note":"' % PATIENT.encode()
    return head + b"x" * (size - len(head) - 3) + b'"}}'


def chunks(body: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def count_records(service: Service) -> int:
    return int(service.db.conn.execute("SELECT COUNT(*) FROM records").fetchone()[0])


def test_single_records_and_verify_take_about_a_mebibyte(
    client: TestClient, registrar: dict[str, str], service: Service
) -> None:
    assert service.settings.max_body_bytes == DEFAULT_MAX_BODY_BYTES == 2**20
    at_limit = client.post("/v1/records", content=padded_record(2**20), headers={**registrar, **JSON})
    assert at_limit.status_code == 202, at_limit.text
    for path in ("/v1/records", "/v1/verify"):
        over = client.post(path, content=padded_record(2**20 + 1), headers={**registrar, **JSON})
        assert (over.status_code, over.json()["code"]) == (413, "payload_too_large"), path
        assert over.json()["details"]["limit"] == 2**20
    assert count_records(service) == 1


def test_bulk_registration_keeps_its_own_limit(client: TestClient, registrar: dict[str, str], service: Service) -> None:
    assert service.settings.max_bulk_body_bytes == DEFAULT_MAX_BULK_BODY_BYTES
    records = [{"patient": PATIENT, "digest": "0x" + f"{i:064x}"} for i in range(20_000)]
    body = orjson.dumps({"records": records})
    assert 2**20 < len(body) < DEFAULT_MAX_BULK_BODY_BYTES
    assert client.post("/v1/records/bulk", content=body, headers={**registrar, **JSON}).status_code == 202
    assert count_records(service) == 20_000


@pytest.mark.parametrize("path", ["/v1/records", "/v1/verify", "/v1/records/bulk"])
def test_a_chunked_body_over_the_limit_is_413(
    client: TestClient, registrar: dict[str, str], service: Service, path: str
) -> None:
    limit = service.settings.max_bulk_body_bytes if path.endswith("bulk") else service.settings.max_body_bytes
    response = client.post(path, content=chunks(padded_record(limit + 1)), headers={**registrar, **JSON})
    assert (response.status_code, response.json()["code"]) == (413, "payload_too_large"), response.text
    assert count_records(service) == 0
    under = client.post("/v1/records", content=chunks(padded_record(1000)), headers={**registrar, **JSON})
    assert under.status_code == 202, under.text  # a chunked body within the limit is read whole


def test_documents_with_too_many_values_are_413(
    client: TestClient, registrar: dict[str, str], service: Service
) -> None:
    limit = service.settings.max_json_elements
    document = {"resourceType": "Basic", "values": [0] * limit}
    body = orjson.dumps({"patient": PATIENT, "contentType": "application/json", "document": document})
    assert len(body) < service.settings.max_body_bytes
    for path in ("/v1/records", "/v1/verify"):
        payload = body if path == "/v1/records" else orjson.dumps({"document": document})
        response = client.post(path, content=payload, headers={**registrar, **JSON})
        assert (response.status_code, response.json()["code"]) == (413, "too_many_elements"), path
        assert response.json()["details"]["max_elements"] == limit
    assert count_records(service) == 0


@pytest.mark.parametrize("depth", [MAX_METADATA_DEPTH + 1, 300])
def test_deeply_nested_metadata_is_400(client: TestClient, registrar: dict[str, str], depth: int) -> None:
    metadata = b'{"a":' * depth + b"1" + b"}" * depth
    body = b'{"patient":"%s","digest":"0x%s","metadata":%s}' % (PATIENT.encode(), b"ab" * 32, metadata)
    response = client.post("/v1/records", content=body, headers={**registrar, **JSON})
    assert (response.status_code, response.json()["code"]) == (400, "nesting_too_deep"), response.text
    assert response.json()["details"]["field"] == "metadata"
    shallow = b'{"a":' * (MAX_METADATA_DEPTH - 1) + b"1" + b"}" * (MAX_METADATA_DEPTH - 1)
    body = b'{"patient":"%s","digest":"0x%s","metadata":%s}' % (PATIENT.encode(), b"ab" * 32, shallow)
    assert client.post("/v1/records", content=body, headers={**registrar, **JSON}).status_code == 202


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("GET", "", None),
        ("GET", "/receipt", None),
        ("POST", "/amend", {"patient": PATIENT, "digest": "0x" + "cd" * 32}),
        ("POST", "/retract", {"reason": "ENTERED_IN_ERROR"}),
    ],
)
@pytest.mark.parametrize("record_id", ["ffffffffffffffff0000000000000000", "8000000000000000" + "0" * 16])
def test_record_ids_past_the_largest_row_id_are_404(
    client: TestClient, registrar: dict[str, str], method: str, suffix: str, body: object, record_id: str
) -> None:
    response = client.request(method, f"/v1/records/{record_id}{suffix}", json=body, headers=registrar)
    assert (response.status_code, response.json()["code"]) == (404, "not_found"), response.text


def test_a_session_token_with_a_non_ascii_byte_is_401(client: TestClient) -> None:
    for token in (b"v1.\xff.abc", "v1.e30.caf\u00e9".encode("latin-1"), b"\xe2\x82\xac"):
        response = client.get(f"/v1/patient/{PATIENT}/consents", headers={"Authorization": b"Bearer " + token})
        assert (response.status_code, response.json()["code"]) == (401, "unauthenticated"), response.text
