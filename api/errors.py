"""The one place where errors become HTTP responses: ``{"code", "message", "details"}``.

Routes raise :mod:`ledger.exceptions` errors and never build error responses themselves. The table
below gives each family its status; reverts are mapped by custom-error name. 4xx are logged as
warnings, 5xx as errors with the traceback; internals never reach the client: a 5xx body says only
the failure's class in a fixed sentence (never an exception's text, which may name a node's URL and
the token in it, or a database host).

One exception to the shape: a refused token request (:class:`TokenRequestError`) is answered as
RFC 6749 section 5.2 says, ``{"error", "error_description"}``, which OAuth clients read. Refusals
of a bearer access token carry RFC 6750's ``WWW-Authenticate`` header beside the usual body.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.schemas.fhir import fhir_response, is_fhir_path
from ledger.exceptions import (
    AuthenticationError,
    ChainError,
    ChainUnavailableError,
    ConflictError,
    ContractRevertError,
    DuplicateError,
    IdempotencyKeyReusedError,
    InputError,
    InsufficientScopeError,
    InvalidAccessTokenError,
    InvalidClientError,
    LedgerError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitedError,
    ServerBusyError,
    StorageFullError,
    StoreUnavailableError,
    TokenRequestError,
)
from ledger.fhir.outcome import operation_outcome, outcome_of

log = logging.getLogger("careledger.api")

RETRY_AFTER_SECONDS = 5

# Most specific first: the first class an error is an instance of decides its status.
STATUS_BY_ERROR: tuple[tuple[type[LedgerError], int], ...] = (
    (AuthenticationError, 401),
    (PermissionDeniedError, 403),
    (NotFoundError, 404),
    (ConflictError, 409),
    (PayloadTooLargeError, 413),
    (RateLimitedError, 429),
    (IdempotencyKeyReusedError, 422),
    (DuplicateError, 409),  # a name taken, or one that looks like a taken one: the store's state, not the input
    (InputError, 400),
    (ChainUnavailableError, 503),
    (StoreUnavailableError, 503),
    (StorageFullError, 503),
    (ServerBusyError, 503),
    (ContractRevertError, 409),
    (ChainError, 502),
    (LedgerError, 500),
)

# Contract reverts the caller caused, by custom-error name: (status, stable code).
REVERTS: dict[str, tuple[int, str]] = {
    "ConsentRegistryInvalidSignature": (400, "invalid_signature"),
    "ConsentRegistryExpiredSignature": (400, "signature_expired"),
    "ConsentRegistryUnauthorizedActor": (403, "not_patient_or_guardian"),
    "ConsentRegistryInvalidWindow": (400, "invalid_validity_window"),
    "ConsentRegistryZeroAddress": (400, "invalid_address"),
    "ConsentRegistryZeroCode": (400, "invalid_code"),
    "ConsentRegistryNotGranted": (409, "consent_not_granted"),
    "ConsentRegistryInvalidGuardian": (400, "invalid_guardian"),
    "ConsentRegistryNotGuardian": (409, "not_a_guardian"),
    "ConsentRegistryNotEmergencyPurpose": (403, "not_an_emergency_purpose"),
    "RecordAnchorAlreadyChanged": (409, "already_changed"),
    "AccessControlUnauthorizedAccount": (403, "missing_chain_role"),
}


# Token requests (RFC 6749 section 5.2): a client that failed to authenticate gets 401, any other refusal 400.
OAUTH_STATUS_BY_ERROR: tuple[tuple[type[TokenRequestError], int], ...] = (
    (InvalidClientError, 401),
    (TokenRequestError, 400),
)
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
"""Token responses, answers and refusals alike, are never cached (RFC 6749 section 5.1)."""
_NOT_OAUTH_TEXT = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")
"""Characters an ``error_description`` may not hold (RFC 6749: printable ASCII but ``"`` and ``\\``)."""


# What a 5xx says, by status: fixed sentences, whatever the error's own message.
SERVER_FAILURES: dict[int, str] = {
    502: "the chain refused or failed the request; retrying may not help",
    503: "a service this one depends on is unavailable; retry later",
    500: "internal error",
}
UNAVAILABLE: dict[str, str] = {
    ChainUnavailableError.code: "the chain is unavailable; retry later",
    StoreUnavailableError.code: "the database is unavailable; retry later",
    StorageFullError.code: "the ledger's disk is full: nothing was written; retry once space is freed",
    ServerBusyError.code: "too many large documents are waiting to be processed: nothing was done; retry later",
}


CODE_PATTERN = r"^[a-z][a-z0-9_]*$"
VALIDATION_STATUS = 422
"""A request that does not match the OpenAPI document (``invalid_request``; also bad JSON)."""


class ErrorBody(BaseModel):
    """The one error shape, whatever the status: a stable ``code`` to act on, a ``message`` for
    people, and ``details`` (which field, the limit, when to retry; ``{}`` on a 5xx)."""

    code: str = Field(pattern=CODE_PATTERN, examples=["not_found"], description="stable: act on this")
    message: str = Field(description="for people; may change between releases")
    details: dict[str, Any] = Field(description="what the code is about (fields, limits, ids); empty on a 5xx")

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"code": "not_found", "message": "no record 'f00d' of this organisation", "details": {}}]
        },
    )


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """An :class:`ErrorBody` as a dict (built by hand: it is on every error's path)."""
    return {"code": code, "message": message, "details": details or {}}


def status_of(error: type[Exception]) -> int:
    """The status every error of this class is answered with (reverts: see :data:`REVERTS`)."""
    if issubclass(error, RequestValidationError):
        return VALIDATION_STATUS
    return next(status for cls, status in STATUS_BY_ERROR if issubclass(error, cls))


def error_response(
    status: int, code: str, message: str, details: dict[str, Any] | None = None, headers: dict[str, str] | None = None
) -> Response:
    """The one JSON error shape, as a response."""
    return Response(
        orjson.dumps(error_body(code, message, details)),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def oauth_error_response(err: TokenRequestError) -> Response:
    """A refused token request, as RFC 6749 section 5.2 says."""
    status = next(s for cls, s in OAUTH_STATUS_BY_ERROR if isinstance(err, cls))
    log.warning("%s: %s", err.code, err.message)
    body = {"error": err.code, "error_description": _NOT_OAUTH_TEXT.sub("?", err.message)}
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=NO_STORE)


def _bearer_challenge(err: LedgerError) -> dict[str, str] | None:
    """RFC 6750's ``WWW-Authenticate`` for a refused access token, None for any other error."""
    if isinstance(err, InvalidAccessTokenError):
        return {"WWW-Authenticate": 'Bearer error="invalid_token"'}
    if isinstance(err, InsufficientScopeError):
        scope = err.details.get("scope")  # none when no scope would do (an admin endpoint)
        return {"WWW-Authenticate": 'Bearer error="insufficient_scope"' + (f', scope="{scope}"' if scope else "")}
    return None


def response_for(err: LedgerError, *, fhir: bool = False) -> Response:
    """The HTTP response for a ledger error (``fhir``: as an OperationOutcome, for the FHIR facade;
    a refused token request always as RFC 6749 says)."""
    if isinstance(err, TokenRequestError):
        return oauth_error_response(err)
    status, code = next(s for cls, s in STATUS_BY_ERROR if isinstance(err, cls)), err.code
    if isinstance(err, ContractRevertError):
        status, code = REVERTS.get(err.error, (409, "contract_rejected"))
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if status == 503 else None
    if status == 429:
        headers = {"Retry-After": str(err.details.get("retry_after", RETRY_AFTER_SECONDS))}
    headers = _bearer_challenge(err) or headers
    details: dict[str, Any] = {}
    if status >= 500:
        log.error("%s: %s", code, err.message, exc_info=err)
        message = UNAVAILABLE.get(code) or SERVER_FAILURES.get(status, "internal error")
    else:
        log.warning("%s: %s", code, err.message)
        message, details = err.message, _jsonable(err.details)
    if fhir:
        return fhir_response(outcome_of(err, code, message, details), status, headers)
    return error_response(status, code, message, details, headers)


def _validation_details(exc: RequestValidationError) -> dict[str, Any]:
    problems = []
    for error in exc.errors():
        location = [str(p) for p in error.get("loc", ()) if p != "body"]
        problems.append({"field": ".".join(location), "problem": error.get("msg", "")})
    return {"errors": problems}


def allowed_methods(request: Request) -> str:
    """Every method some route serves at the request's path (RFC 9110 ``Allow``). Starlette names
    only the methods of the first route that matches the path, and FastAPI makes one route per
    method (``GET`` and ``POST /v1/records`` are two)."""
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.routes):
        regex = getattr(route, "path_regex", None)
        if regex is not None and regex.match(request.scope["path"]):
            methods |= route.methods or set()
    return ", ".join(sorted(methods))


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that turn every error into the one JSON shape."""

    @app.exception_handler(LedgerError)
    async def ledger_error(request: Request, exc: LedgerError) -> Response:
        return response_for(exc, fhir=is_fhir_path(request.url.path))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        details = _validation_details(exc)
        log.warning("invalid_request: %s", details)
        return _answer(request, VALIDATION_STATUS, "invalid_request", "the request does not match the schema", details)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = allowed_methods(request)
        return _answer(request, exc.status_code, code, str(exc.detail), headers=headers or None)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.error("unexpected error", exc_info=exc)
        return _answer(request, 500, "internal_error", "internal error")


_ISSUE_BY_STATUS = {404: "not-found", 405: "not-supported", 422: "invalid", 500: "exception"}


def _answer(
    request: Request,
    status: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """An error not raised by the ledger, in the one JSON shape or (under the FHIR facade) as an OperationOutcome."""
    if is_fhir_path(request.url.path):
        problems = (details or {}).get("errors", [])
        issues = [
            {"severity": "error", "code": "invalid", "diagnostics": p["problem"], "expression": [p["field"]]}
            for p in problems
            if p.get("field")
        ]
        kind = _ISSUE_BY_STATUS.get(status, "processing")
        return fhir_response(operation_outcome(kind, code, message, issues=issues), status, headers)
    return error_response(status, code, message, details, headers)
