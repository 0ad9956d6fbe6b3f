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

from ledger.exceptions import InputError
from ledger.fhir.systems import FHIR_JSON
from ledger.records.strict_json import parse_json

FHIR_BASE_PATH: Final = "/fhir/r4"
"""Where the facade is served; errors under it are answered as OperationOutcome."""


def is_fhir_path(path: str) -> bool:
    return path == FHIR_BASE_PATH or path.startswith(FHIR_BASE_PATH + "/")


def fhir_response(body: dict[str, Any], status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A FHIR resource as the answer (``application/fhir+json``)."""
    return Response(orjson.dumps(body), status_code=status_code, media_type=FHIR_JSON, headers=headers)


async def fhir_resource_body(request: Request) -> dict[str, Any]:
    """The request's resource: a JSON object (sent as ``application/fhir+json`` or ``application/json``)."""
    parsed = parse_json(await request.body())
    if not isinstance(parsed, dict):
        raise InputError("the body must be a FHIR resource (a JSON object)", field="body")
    return parsed


def resource_request_body(example: dict[str, Any]) -> dict[str, Any]:
    """``openapi_extra`` documenting a FHIR resource request body."""
    schema = {"type": "object", "additionalProperties": True, "examples": [example]}
    return {"requestBody": {"required": True, "content": {FHIR_JSON: {"schema": schema}}}}


def resource_responses(description: str) -> dict[int | str, dict[str, Any]]:
    """``responses`` of a route answering a FHIR resource, or an OperationOutcome."""
    outcome = {FHIR_JSON: {"schema": {"type": "object", "description": "OperationOutcome"}}}
    return {
        200: {"description": description, "content": {FHIR_JSON: {"schema": {"type": "object"}}}},
        400: {"description": "OperationOutcome: invalid or unsupported", "content": outcome},
        401: {"description": "OperationOutcome: no credentials", "content": outcome},
        403: {"description": "OperationOutcome: not allowed", "content": outcome},
        404: {"description": "OperationOutcome: not found", "content": outcome},
    }
