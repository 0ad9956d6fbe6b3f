"""What the OpenAPI document says beyond the routes' own signatures: every error an operation can
answer with, in the one error shape; operation ids; tags.

Each function that raises on purpose (an endpoint, or a dependency such as ``authenticate``) says
which error families it raises with :func:`api.declared_errors.raises`, next to its code. When the document is built,
:func:`document_errors` walks each operation's endpoint and dependencies, maps the families to
statuses through the one error table (:func:`api.errors.status_of`, :data:`api.errors.REVERTS`),
and documents each status with :class:`~api.errors.ErrorBody` (under the FHIR facade, an
OperationOutcome, as :mod:`api.errors` answers there): FastAPI's own 422 schema
(``HTTPValidationError``, which this API never sends) is replaced. A request that can fail
validation (it has parameters or a body FastAPI reads; a route reading its body by hand raises
``RequestValidationError`` itself, or not) also documents 422 ``invalid_request``, and one with a
body 413 (the body limit, :class:`api.limits.BodySizeLimit`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.utils import get_flat_params
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from starlette.routing import BaseRoute

from api.declared_errors import Raised, raised_by
from api.errors import RETRY_AFTER_SECONDS, REVERTS, ErrorBody, status_of
from api.limits import LedgerRoute
from api.schemas.fhir import OPERATION_OUTCOME_SCHEMA, is_fhir_path
from ledger.exceptions import LedgerError, PayloadTooLargeError
from ledger.fhir.systems import FHIR_JSON

TAGS: list[dict[str, Any]] = [
    {
        "name": "records",
        "description": "Register records (salted commitments to their digests), read them back, "
        "fetch their receipts, amend and retract them. Roles `registrar` (writes) and `reader`.",
    },
    {
        "name": "verification",
        "description": "Check a receipt against the chain (public, rate-limited per client), "
        "or look a document up among your organisation's records (API key).",
    },
    {
        "name": "consent",
        "description": "The EIP-712 domain patients sign, relaying patient-signed consent changes "
        "(role `relayer`), and the consents given to your organisation.",
    },
    {
        "name": "access",
        "description": "Ask to access a patient's data (consent checked on chain), or break glass "
        "(role `emergency`); every attempt is written to the audit trail first.",
    },
    {
        "name": "audit",
        "description": "The audit trail of access attempts, per patient and per organisation; each "
        "entry is an anchored record with a receipt.",
    },
    {
        "name": "patient",
        "description": "The patient page's own endpoints: public codes and signing domains, "
        "sign-in with a signed challenge, the patient's own consents and accesses, relayed signed changes "
        "(no API key).",
    },
    {
        "name": "smart",
        "description": "SMART Backend Services: the configuration document, and OAuth 2.0 client_credentials "
        "access tokens for registered clients (their scopes stand for roles). Token refusals are OAuth's "
        "`{error, error_description}`.",
    },
    {
        "name": "fhir",
        "description": "The FHIR R4 facade (`application/fhir+json`): the CapabilityStatement, Consent (created and "
        "withdrawn on the patient's signature), AuditEvent and Provenance (read and searched); every error is an "
        "OperationOutcome.",
    },
    {"name": "admin", "description": "Organisations and apps (role `admin`); an app's API key is shown once."},
    {"name": "health", "description": "Liveness, readiness and Prometheus metrics."},
]

STATUS_MEANINGS: dict[int, str] = {
    400: "the request is well formed but refused",
    401: "no valid credentials",
    403: "these credentials may not do this",
    404: "no such thing (or not yours)",
    409: "the request conflicts with the current state",
    413: "the body, or a part of it, is over its limit",
    422: "the request does not match this document, or reuses an Idempotency-Key",
    429: "rate-limited: retry after `Retry-After` seconds",
    502: "the chain refused or failed the request",
    503: "a service this one depends on is unavailable: retry after `Retry-After` seconds",
}
RETRY_AFTER_HEADER = {
    "Retry-After": {
        "description": f"seconds to wait before retrying (for example {RETRY_AFTER_SECONDS})",
        "required": True,
        "schema": {"type": "string", "pattern": r"^[0-9]+$"},
    }
}
ERROR_BODY_REF = "#/components/schemas/ErrorBody"
OPERATION_OUTCOME_REF = "#/components/schemas/OperationOutcome"
FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")


def operation_id(route: APIRoute | RouteContext) -> str:
    """The operation id: the endpoint function's name (``register_record``, ``verify``)."""
    return str(route.name)


def _status_and_code(error: Raised) -> tuple[int, str]:
    if isinstance(error, str):
        return REVERTS[error]
    if issubclass(error, RequestValidationError):
        return status_of(error), "invalid_request"
    assert issubclass(error, LedgerError), error
    return status_of(error), error.code


def _error_content(status: int, *, fhir: bool) -> dict[str, Any]:
    """What an error of ``status`` is answered with: ``ErrorBody``, or under the FHIR facade an
    OperationOutcome (and for 413 either: the body limit answers before any route, in ``ErrorBody``)."""
    error_body = {"application/json": {"schema": {"$ref": ERROR_BODY_REF}}}
    if not fhir:
        return error_body
    outcome = {FHIR_JSON: {"schema": {"$ref": OPERATION_OUTCOME_REF}}}
    return {**outcome, **error_body} if status == 413 else outcome


def error_responses(errors: Iterable[Raised], *, fhir: bool = False) -> dict[str, dict[str, Any]]:
    """The OpenAPI ``responses`` entries for these errors: one per status, each an ``ErrorBody`` (or
    under the FHIR facade an OperationOutcome) whose description names the codes."""
    codes: dict[int, list[str]] = {}
    for error in errors:
        status, code = _status_and_code(error)
        if code not in codes.setdefault(status, []):
            codes[status].append(code)
    responses: dict[str, dict[str, Any]] = {}
    for status in sorted(codes):
        named = ", ".join(f"`{c}`" for c in codes[status])
        response: dict[str, Any] = {
            "description": f"{STATUS_MEANINGS.get(status, 'error')} ({named})",
            "content": _error_content(status, fhir=fhir),
        }
        if status in (429, 503):
            response["headers"] = RETRY_AFTER_HEADER
        responses[str(status)] = response
    return responses


def _validates_inputs(route: RouteContext) -> bool:
    """Whether FastAPI validates any of the route's inputs (parameters it declares, or a body)."""
    return route.body_field is not None or bool(get_flat_params(route.dependant))


def document_errors(document: dict[str, Any], routes: Sequence[BaseRoute]) -> None:
    """Document every operation's error statuses with ``ErrorBody`` (in place)."""
    for route in iter_route_contexts(routes):
        original = route.original_route
        if not isinstance(original, APIRoute) or not route.include_in_schema:
            continue
        for method in route.methods or ():
            operation = document["paths"][route.path_format][method.lower()]
            errors = raised_by(route.dependant)
            if _validates_inputs(route):
                errors.append(RequestValidationError)
            if "requestBody" in operation:
                errors.append(PayloadTooLargeError)
                if isinstance(original, LedgerRoute):
                    errors.extend(original.body_errors)
            responses = operation.setdefault("responses", {})
            if "422" in responses and "HTTPValidationError" in str(responses["422"]):
                del responses["422"]
            for status, response in error_responses(errors, fhir=is_fhir_path(route.path_format or "")).items():
                documented = responses.setdefault(status, response)
                if documented is not response:  # the route's own description and examples, with the body
                    content = documented.setdefault("content", {})
                    for media_type, body in response["content"].items():
                        content.setdefault(media_type, {}).setdefault("schema", body["schema"])
                    if "headers" in response:
                        documented.setdefault("headers", response["headers"])
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name in FASTAPI_VALIDATION_SCHEMAS:
        schemas.pop(name, None)
    schemas["ErrorBody"] = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas["OperationOutcome"] = OPERATION_OUTCOME_SCHEMA


class DocumentedApp(FastAPI):
    """The FastAPI app whose OpenAPI document lists every operation's errors (built once)."""

    _documented: dict[str, Any] | None = None

    def openapi(self) -> dict[str, Any]:
        document = super().openapi()
        if document is not self._documented:
            document_errors(document, self.routes)
            self._documented = document
        return document
