"""The FHIR facade's wire format: ``application/fhir+json`` bodies, in and out.

Bodies are FHIR resources, parsed as strictly as record documents (:func:`ledger.records.strict_json.parse_json`:
no repeated keys, no inexact numbers), and answered as FHIR JSON. The OpenAPI document shows them
as JSON objects (their shape is FHIR's, validated with ``fhir.resources`` R4B).
"""

from __future__ import annotations

from typing import Any, Final

import orjson
from fastapi import Request
from fastapi.responses import Response

from api.declared_errors import raises
from ledger.exceptions import InputError, InvalidDocumentError, TooManyElementsError
from ledger.fhir.systems import FHIR_JSON
from ledger.records.strict_json import parse_json

FHIR_BASE_PATH: Final = "/fhir/r4"
"""Where the facade is served; errors under it are answered as OperationOutcome."""


def is_fhir_path(path: str) -> bool:
    return path == FHIR_BASE_PATH or path.startswith(FHIR_BASE_PATH + "/")


def fhir_response(body: dict[str, Any], status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A FHIR resource as the answer (``application/fhir+json``)."""
    return Response(orjson.dumps(body), status_code=status_code, media_type=FHIR_JSON, headers=headers)


@raises(InvalidDocumentError, InputError, TooManyElementsError)
async def fhir_resource_body(request: Request) -> dict[str, Any]:
    """The request's resource: a JSON object (sent as ``application/fhir+json`` or ``application/json``)."""
    parsed = parse_json(await request.body())
    if not isinstance(parsed, dict):
        raise InputError("the body must be a FHIR resource (a JSON object)", field="body")
    return parsed


class FhirResponse(Response):
    media_type = FHIR_JSON


OPERATION_OUTCOME_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "description": "A FHIR R4 OperationOutcome; the first issue's `details.coding` names the ledger's stable error "
    "code (system `urn:careledger:error`), the code the /v1 API answers with",
    "required": ["resourceType", "issue"],
    "properties": {
        "resourceType": {"const": "OperationOutcome"},
        "issue": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["severity", "code"],
                "properties": {
                    "severity": {"enum": ["fatal", "error", "warning", "information"]},
                    "code": {"type": "string"},
                    "diagnostics": {"type": "string"},
                    "expression": {"type": "array", "items": {"type": "string"}},
                    "details": {"type": "object"},
                },
            },
        },
    },
}
"""The ``OperationOutcome`` component of the OpenAPI document: every error under the facade."""


def resource_schema(resource_type: str) -> dict[str, Any]:
    """A FHIR resource of one type, for the OpenAPI document (its shape is FHIR R4's)."""
    return {
        "type": "object",
        "description": f"a FHIR R4 {resource_type}",
        "required": ["resourceType"],
        "properties": {"resourceType": {"const": resource_type}},
    }


def resource_request_body(example: dict[str, Any]) -> dict[str, Any]:
    """``openapi_extra`` documenting a FHIR resource request body."""
    schema = {**resource_schema(example["resourceType"]), "examples": [example]}
    return {"requestBody": {"required": True, "content": {FHIR_JSON: {"schema": schema}}}}


def resource_responses(resource_type: str, description: str, status: int = 200) -> dict[int | str, dict[str, Any]]:
    """``responses`` of a route answering a FHIR resource (its errors: OperationOutcome, added to the
    document with every operation's error statuses by :mod:`api.openapi`)."""
    return {status: {"description": description, "content": {FHIR_JSON: {"schema": resource_schema(resource_type)}}}}
