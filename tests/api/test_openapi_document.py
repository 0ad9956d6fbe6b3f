"""The OpenAPI document tells the truth (issue 13): one error model for every error status, typed
2xx answers, readable operation ids, described tags, the constraints the server enforces, and
``Allow`` on 405. The schemathesis run (``test_fuzz_openapi.py``) checks the served answers
against this document; these check the document itself, and need no chain.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from ledger.config import Settings
from ledger.consent.codes import PURPOSES_OF_USE
from ledger.records.receipts import receipt_schema
from ledger.values import CODE_PATTERN

ERROR_BODY = {"$ref": "#/components/schemas/ErrorBody"}
OAUTH_ERROR = {"$ref": "#/components/schemas/OAuthErrorOut"}
OAUTH_REFUSALS = {("/oauth/token", "400"), ("/oauth/token", "401")}
"""RFC 6749 section 5.2: the token endpoint refuses a token request in OAuth's shape."""
OPERATION_OUTCOME = {"$ref": "#/components/schemas/OperationOutcome"}
FHIR_JSON = "application/fhir+json"
"""The FHIR facade (``/fhir/r4``) answers every error as an OperationOutcome."""
HTTP_METHODS = ("get", "put", "post", "delete", "patch")
READ_BY_HAND = {("get", "/fhir/r4/Consent"), ("get", "/fhir/r4/AuditEvent"), ("get", "/fhir/r4/Provenance")}
"""Operations whose parameters the route reads itself (a FHIR search refuses unknown ones with 400)."""


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The app, not started: building the document and routing need no ledger."""
    return create_app(Settings(data_dir=tmp_path_factory.mktemp("data")))


@pytest.fixture(scope="module")
def document(app: Any) -> dict[str, Any]:
    built: dict[str, Any] = TestClient(app).get("/openapi.json").json()
    return built


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method in HTTP_METHODS:
            if method in item:
                yield path, method, item[method]


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def with_components(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """A schema that a JSON Schema validator can resolve the document's references in."""
    return {**schema, "components": document["components"]}


def is_public(operation: dict[str, Any]) -> bool:
    return not operation.get("security") or {} in operation["security"]


def test_fastapi_validation_schema_is_gone(document: dict[str, Any]) -> None:
    """The API never sends FastAPI's ``{"detail": [...]}``: the document must not promise it."""
    text = str(document)
    assert "HTTPValidationError" not in text and "#/components/schemas/ValidationError" not in text


def test_every_error_status_is_the_one_error_body(document: dict[str, Any]) -> None:
    for path, method, operation in operations(document):
        for status, response in operation["responses"].items():
            if int(status) < 400:
                continue
            if path.startswith("/fhir/r4/"):
                assert response["content"][FHIR_JSON]["schema"] == OPERATION_OUTCOME, (method, path, status)
                continue
            schema = response.get("content", {}).get("application/json", {}).get("schema")
            assert schema is not None, (method, path, status)
            expected = OAUTH_ERROR if (path, status) in OAUTH_REFUSALS else ERROR_BODY
            assert schema == expected or expected in schema.get("anyOf", []), (method, path, status, schema)
            assert response["description"], (method, path, status)


def test_operations_document_the_statuses_their_inputs_and_auth_can_cause(document: dict[str, Any]) -> None:
    for path, method, operation in operations(document):
        statuses = set(operation["responses"])
        json_body = "application/json" in operation.get("requestBody", {}).get("content", {})
        if ("parameters" in operation or json_body) and (method, path) not in READ_BY_HAND:
            assert "422" in statuses, (method, path)  # invalid_request (and a reused Idempotency-Key)
        if "requestBody" in operation:
            assert "413" in statuses, (method, path)  # the body limit
        if not is_public(operation):
            assert "401" in statuses, (method, path)
        for status in ("429", "503"):
            if status in statuses:
                assert "Retry-After" in operation["responses"][status].get("headers", {}), (method, path, status)
    verify = document["paths"]["/v1/verify"]["post"]["responses"]
    assert {"200", "400", "413", "422", "429", "502", "503"} <= set(verify)
    amend = document["paths"]["/v1/records/{record_id}/amend"]["post"]["responses"]
    assert {"202", "400", "401", "403", "404", "409", "413", "422", "503"} <= set(amend)
    assert "403" in document["paths"]["/v1/admin/apps"]["post"]["responses"]


def test_every_success_has_a_typed_body(document: dict[str, Any]) -> None:
    for path, method, operation in operations(document):
        for status, response in operation["responses"].items():
            if not 200 <= int(status) < 300:
                continue
            content = response.get("content")
            assert content, (method, path, status)
            for media_type, body in content.items():
                schema = resolve(document, body.get("schema") or {})
                typed = "type" in schema or "anyOf" in schema or "items" in schema
                assert typed, (method, path, status, media_type, schema)
                if media_type == "application/json" and schema.get("type") == "object":
                    assert schema.get("properties") and schema.get("additionalProperties") is False, (method, path)


def test_the_receipt_answer_is_the_published_receipt_schema(document: dict[str, Any]) -> None:
    published = {k: v for k, v in receipt_schema().items() if not k.startswith("$")}
    responses = document["paths"]["/v1/records/{record_id}/receipt"]["get"]["responses"]
    assert resolve(document, responses["200"]["content"]["application/json"]["schema"]) == published
    assert "202" in responses  # not anchored yet


def test_operation_ids_are_the_route_names(app: Any, document: dict[str, Any]) -> None:
    ids = [operation["operationId"] for _, _, operation in operations(document)]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    assert {"register_record", "verify", "read_receipt", "create_organisation", "relay_grant", "healthz"} <= set(ids)
    assert all(i.isidentifier() and i.islower() for i in ids), ids


def test_tags_are_declared_and_described(document: dict[str, Any]) -> None:
    declared = {tag["name"]: tag.get("description", "") for tag in document.get("tags", [])}
    used = {tag for _, _, operation in operations(document) for tag in operation["tags"]}
    assert used <= set(declared), used - set(declared)
    assert all(len(declared[tag]) > 20 for tag in used), declared


def test_constraints_the_server_enforces_are_in_the_schema(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    access = schemas["AccessIn"]["properties"]
    assert access["scope"]["pattern"] == CODE_PATTERN
    assert access["purpose"]["enum"] == list(PURPOSES_OF_USE)
    assert access["patient"]["format"] == "eip55-address"
    assert "not" in schemas["BreakGlassIn"]["properties"]["patient"]  # never the zero address
    check = {p["name"]: p["schema"] for p in document["paths"]["/v1/consents/check"]["get"]["parameters"]}
    assert check["scope"]["pattern"] == CODE_PATTERN and check["purpose"]["enum"] == list(PURPOSES_OF_USE)
    record = schemas["RecordIn"]
    assert len(record["oneOf"]) == 3  # exactly one of document, content, digest
    assert record["properties"]["content"]["anyOf"][0]["pattern"]  # base64
    name = re.compile(schemas["OrganisationIn"]["properties"]["name"]["pattern"])
    assert name.search("Lakeside Clinic") and not name.search("Lakeside\u200b Clinic") and not name.search("  ")
    path = {p["name"]: p["schema"] for p in document["paths"]["/v1/records/{record_id}"]["get"]["parameters"]}
    assert path["record_id"]["pattern"] == "^[0-9a-f]{32}$"
    assert schemas["AppIn"]["properties"]["organisationId"]["maximum"] == 2**53 - 1  # exact in any JSON reader


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/v1/records", "GET, POST"),
        ("OPTIONS", "/v1/records", "GET, POST"),
        ("GET", "/v1/records/bulk", "POST"),  # never taken for a record's path
        ("TRACE", "/healthz", "GET"),
        ("PATCH", "/v1/admin/apps/3", "DELETE"),
    ],
)
def test_405_names_every_allowed_method(
    app: Any, document: dict[str, Any], method: str, path: str, allowed: str
) -> None:
    response = TestClient(app).request(method, path)
    assert response.status_code == 405 and response.headers["allow"] == allowed, (response.headers, response.text)
    jsonschema.validate(response.json(), with_components(document, ERROR_BODY))
    assert response.json()["code"] == "method_not_allowed"


def test_the_validation_error_sent_is_the_one_documented(client: TestClient, document: dict[str, Any]) -> None:
    """A request that does not match the document: 422 ``invalid_request`` in the ErrorBody shape."""
    response = client.get("/v1/patient/0x12/nonce")
    assert response.status_code == 422 and response.json()["code"] == "invalid_request"
    jsonschema.validate(response.json(), with_components(document, ERROR_BODY))
    assert "422" in document["paths"]["/v1/patient/{patient}/nonce"]["get"]["responses"]


def test_error_body_builds_an_error_body() -> None:
    from api.errors import ErrorBody, error_body  # imported here: the other tests hold on code without it

    ErrorBody.model_validate(error_body("not_found", "no record", {"record_id": "f00d"}))
    ErrorBody.model_validate(error_body("internal_error", "internal error"))
