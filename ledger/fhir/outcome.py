"""Errors as FHIR R4 ``OperationOutcome`` resources, and search results as a ``searchset`` Bundle.

An outcome has one error issue (a refusal of an invalid resource has one per failing field, as
:func:`ledger.records.fhir.operation_outcome` builds them); its ``details`` carry the ledger's stable
error code (system :data:`ERROR_SYSTEM`), the same ``code`` the ``/v1`` API answers with.
"""

from __future__ import annotations

from typing import Any, Final

from ledger.exceptions import (
    AuthenticationError,
    ChainUnavailableError,
    ConflictError,
    InputError,
    InvalidSignatureError,
    LedgerError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitedError,
    ServerBusyError,
    StoreUnavailableError,
    UnsupportedFhirError,
)

ERROR_SYSTEM: Final = "urn:careledger:error"

# Most specific first: the first class an error is an instance of decides its issue type
# (http://hl7.org/fhir/issue-type).
ISSUE_TYPES: Final[tuple[tuple[type[LedgerError], str], ...]] = (
    (UnsupportedFhirError, "not-supported"),
    (AuthenticationError, "login"),
    (PermissionDeniedError, "forbidden"),
    (NotFoundError, "not-found"),
    (ConflictError, "conflict"),
    (RateLimitedError, "throttled"),
    (PayloadTooLargeError, "too-costly"),
    (InvalidSignatureError, "security"),
    (InputError, "invalid"),
    (ChainUnavailableError, "transient"),
    (StoreUnavailableError, "transient"),
    (ServerBusyError, "transient"),
    (LedgerError, "exception"),
)


def issue_type(err: LedgerError) -> str:
    """The OperationOutcome issue type of a ledger error."""
    return next(kind for cls, kind in ISSUE_TYPES if isinstance(err, cls))


def operation_outcome(
    kind: str, code: str, message: str, *, expression: str | None = None, issues: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """An OperationOutcome: ``issues`` as given (field by field), or one issue of type ``kind``; the
    first issue's ``details`` name the ledger's error ``code``."""
    details = {"coding": [{"system": ERROR_SYSTEM, "code": code}], "text": message}
    if issues:
        first = {**issues[0], "details": details}
        return {"resourceType": "OperationOutcome", "issue": [first, *issues[1:]]}
    issue: dict[str, Any] = {"severity": "error", "code": kind, "details": details, "diagnostics": message}
    if expression:
        issue["expression"] = [expression]
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def outcome_of(err: LedgerError, code: str, message: str, details: dict[str, Any]) -> dict[str, Any]:
    """The OperationOutcome for a ledger error answered with ``code`` and ``message`` (the API's, which
    hides a server failure's own text) and the error's client-safe ``details``."""
    nested = details.get("operationOutcome")
    issues = nested.get("issue") if isinstance(nested, dict) else None
    expression = details.get("expression")
    return operation_outcome(
        issue_type(err), code, message, expression=expression if isinstance(expression, str) else None, issues=issues
    )


def searchset(
    resources: list[dict[str, Any]], *, base: str, self_url: str, next_url: str | None = None, paged: bool = False
) -> dict[str, Any]:
    """A ``searchset`` Bundle of matches: every one (with ``total``), or, when ``paged``, one page of
    them (no ``total``; a ``next`` link while more follow)."""
    links = [{"relation": "self", "url": self_url}]
    if next_url is not None:
        links.append({"relation": "next", "url": next_url})
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        **({} if paged else {"total": len(resources)}),
        "link": links,
        "entry": [
            {"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r, "search": {"mode": "match"}}
            for r in resources
        ],
    }
