"""FHIR validation of record documents, with the ``fhir.resources`` models: R4 by default, R5 when asked.

A document that names a ``resourceType`` claims to be FHIR and is checked against that resource's
model before it is registered: a record whose digest is anchored should at least be a well-formed
resource. (The digest is still taken over the document as sent, in RFC 8785 canonical form.)

The version is the ``fhirVersion`` parameter of the record's content type
(``application/fhir+json; fhirVersion=5.0``), as the FHIR specification names it (major.minor; a
full ``4.0.1`` is read as ``4.0``), else the configured default (R4). ``fhir.resources`` 8.3 ships
no FHIR 4.0.1 models: R4 documents are validated with its R4B (4.3.0) models. R4B is R4 but for a
few modules (medication regulation, evidence-based medicine, subscriptions, Substance), so the kinds
a record usually is (Patient, Observation, Encounter, MedicationRequest, Condition,
DiagnosticReport, DocumentReference, a Bundle of those) validate as in R4; the R4 resources R4B
removed (``MedicinalProduct``, ``EffectEvidenceSynthesis``, ...) are refused as unknown. The models
check a code only against the code grammar; the codes of required bindings are checked against their
value sets of the version itself (FHIR 4.0.1 for R4, 5.0.0 for R5) by :mod:`~ledger.records.fhir_bindings`.

A refusal names every failing field (``errors``, as elsewhere in the API) and says the same as an
R4 ``OperationOutcome`` (``operationOutcome``), for FHIR clients that read only that.
"""

from __future__ import annotations

from email.message import Message
from email.utils import collapse_rfc2231_value
from functools import lru_cache
from importlib import import_module
from typing import Any, Final, Literal

from pydantic import ValidationError

from ledger.exceptions import InputError, InvalidFhirError, PayloadTooLargeError, UnsupportedFhirVersionError
from ledger.records.fhir_bindings import CODE_INVALID, required_code_problems
from ledger.records.strict_json import parse_json

FhirVersion = Literal["4.0", "5.0"]
FHIR_VERSIONS: Final[tuple[FhirVersion, ...]] = ("4.0", "5.0")
"""The versions documents are validated as (major.minor, as the ``fhirVersion`` parameter names them)."""
DEFAULT_FHIR_VERSION: Final[FhirVersion] = "4.0"
"""What almost every EHR and SMART app sends."""
FHIR_JSON: Final = "application/fhir+json"
PLAIN_JSON: Final = "application/json"
"""A document sent with this content type is any JSON, never validated as FHIR."""

_MODELS: Final[dict[FhirVersion, str]] = {"4.0": "fhir.resources.R4B", "5.0": "fhir.resources"}
_ABSTRACT: Final = frozenset({"Resource", "DomainResource", "CanonicalResource", "MetadataResource"})
"""Resource types no instance may have (the models exist, as bases)."""
MAX_REPORTED_ERRORS: Final = 20

BundleMode = Literal["whole", "entries"]
SPLITTABLE_BUNDLES: Final = ("transaction", "collection")
"""Bundle types whose entries can be registered one record each: each entry is a resource of its
own. (A document or message Bundle means something only as a whole.)"""


def _media_type(content_type: str) -> tuple[str, dict[str, str]]:
    """The media type (lower case) and its parameters (names in lower case) of a content type."""
    message = Message()
    message["content-type"] = content_type
    params = {name.lower(): str(collapse_rfc2231_value(value)) for name, value in message.get_params(failobj=[])[1:]}
    return message.get_content_type(), params


def _supported(version: str, field: str) -> FhirVersion:
    major_minor = ".".join(version.strip().split(".")[:2])
    if major_minor not in FHIR_VERSIONS:
        raise UnsupportedFhirVersionError(
            f"FHIR version {version!r} is not supported (supported: {', '.join(FHIR_VERSIONS)})",
            field=field,
            fhirVersion=version,
            supported=list(FHIR_VERSIONS),
            operationOutcome={
                "resourceType": "OperationOutcome",
                "issue": [{"severity": "error", "code": "not-supported", "diagnostics": f"fhirVersion={version}"}],
            },
        )
    return major_minor


def requested_version(content_type: str | None, *, field: str = "contentType") -> FhirVersion | None:
    """The FHIR version a content type asks for (its ``fhirVersion`` parameter), or None if it names none.

    Raises:
        UnsupportedFhirVersionError: It names a version documents are not validated as.
        InputError: It names one on a type other than ``application/fhir+json``.
    """
    if content_type is None:
        return None
    media_type, params = _media_type(content_type)
    version = params.get("fhirversion")
    if version is None:
        return None
    if media_type != FHIR_JSON:
        raise InputError(f"fhirVersion is a parameter of {FHIR_JSON}, not of {media_type}", field=field)
    return _supported(version, field)


def fhir_version_of(
    document: dict[str, Any], content_type: str | None, default: FhirVersion = DEFAULT_FHIR_VERSION
) -> FhirVersion | None:
    """The version ``document`` is to be validated as, or None if it is not FHIR: it names no
    ``resourceType``, or it is sent as plain ``application/json``.

    Raises:
        UnsupportedFhirVersionError, InputError: As :func:`requested_version`.
    """
    asked = requested_version(content_type)
    plain = content_type is not None and _media_type(content_type)[0] == PLAIN_JSON
    if plain or "resourceType" not in document:
        return None
    return asked or default


def validate_fhir_content(
    raw: bytes, content_type: str | None, default: FhirVersion = DEFAULT_FHIR_VERSION
) -> FhirVersion | None:
    """Validate raw content (sent in base64) that says it is FHIR JSON, and answer the version it was
    validated as; None for any other content (a PDF, an image), which is not validated.

    Content is FHIR when its content type is ``application/fhir+json`` (its ``fhirVersion``, else
    ``default``, is the version): then it must be strict JSON (as the auditor parses documents) and a
    valid resource, exactly as a ``document`` sent as JSON must be.

    Raises:
        InvalidFhirError: Not a valid resource of the version (or no JSON object at all).
        InvalidDocumentError: Not strict JSON (``field="content"``).
        UnsupportedFhirVersionError: As :func:`requested_version`.
    """
    if content_type is None or _media_type(content_type)[0] != FHIR_JSON:
        return None
    version = requested_version(content_type) or default
    document = parse_json(raw, field="content")
    if not isinstance(document, dict):
        problem = {"path": (), "problem": "a FHIR resource is a JSON object", "type": "model_type"}
        raise _refusal(f"content is no FHIR {version} resource", version, "Resource", [problem])
    validate_fhir(document, version)
    return version


@lru_cache(maxsize=1024)  # bounded: the names come from callers, and unknown ones are cached too
def _model(version: FhirVersion, resource_type: str) -> Any:
    """The model of a concrete resource type in ``version``, or None if there is none."""
    try:
        model = import_module(_MODELS[version]).get_fhir_model_class(resource_type)
    except (ValueError, KeyError):
        return None
    return model if model.has_resource_base() and resource_type not in _ABSTRACT else None


def _expression(path: tuple[str | int, ...]) -> str:
    """A FHIRPath to a field (``Bundle.entry[1].resource.code``) from a path of names and indices."""
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path)


_STRUCTURE_ERRORS: Final = frozenset({"extra_forbidden", "unknown_resource_type", "model_validation_format"})


def _issue_type(error_type: str) -> str:
    """The OperationOutcome issue type (``http://hl7.org/fhir/issue-type``) for a pydantic error type."""
    if error_type == CODE_INVALID:
        return "code-invalid"
    if "missing" in error_type:
        return "required"
    if error_type in _STRUCTURE_ERRORS or error_type.endswith("_type"):  # string_type, list_type, ...
        return "structure"
    return "value"


def operation_outcome(resource_type: str, problems: list[dict[str, Any]]) -> dict[str, Any]:
    """An R4 ``OperationOutcome`` with one error issue per problem (``field``, ``problem``, ``type``)."""
    return {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error",
                "code": _issue_type(p["type"]),
                "diagnostics": p["problem"],
                "expression": [resource_type + (_expression(p["path"]) if p["path"] else "")],
            }
            for p in problems
        ],
    }


def _error(problem: dict[str, Any]) -> dict[str, Any]:
    """One entry of a refusal's ``errors``: the field (``entry.1.resource.status``), the problem and,
    for a code outside its required value set, the code sent and the value set."""
    error = {"field": ".".join(str(part) for part in problem["path"]), "problem": problem["problem"]}
    if problem["type"] == CODE_INVALID:
        error |= {"code": problem["code"], "valueSet": problem["valueSet"]}
    return error


def _refusal(
    message: str, version: FhirVersion, resource_type: str, problems: list[dict[str, Any]]
) -> InvalidFhirError:
    shown = problems[:MAX_REPORTED_ERRORS]
    return InvalidFhirError(
        message,
        resourceType=resource_type,
        fhirVersion=version,
        errors=[_error(p) for p in shown],
        errorCount=len(problems),
        operationOutcome=operation_outcome(resource_type, shown),
    )


def _unknown_types(document: dict[str, Any], version: FhirVersion) -> list[dict[str, Any]]:
    """Every nested resource (an object with a ``resourceType``) whose type the version does not have.

    The models raise ``KeyError`` or ``TypeError`` instead of a validation error on those, so they
    are found first, each with its path.
    """
    problems: list[dict[str, Any]] = []
    stack: list[tuple[tuple[str | int, ...], Any]] = [((), document)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, list):
            stack.extend(((*path, i), v) for i, v in reversed(list(enumerate(value))))
        elif isinstance(value, dict):
            if path and "resourceType" in value:
                named = value["resourceType"]
                if not isinstance(named, str) or _model(version, named) is None:
                    problems.append(
                        {
                            "path": (*path, "resourceType"),
                            "problem": f"not a FHIR {version} resource type: {named!r}",
                            "type": "unknown_resource_type",
                        }
                    )
            stack.extend(((*path, k), v) for k, v in reversed(list(value.items())))
    return problems


def _path(loc: tuple[str | int, ...], error_type: str) -> tuple[str | int, ...]:
    """The field an error is about: ``fhir.resources`` reports a value of the wrong element type at
    the field's ``root``, which is no FHIR element."""
    return loc[:-1] if error_type == "model_validation_format" and loc[-1:] == ("root",) else loc


def validate_fhir(document: dict[str, Any], version: FhirVersion = DEFAULT_FHIR_VERSION) -> None:
    """Raise :class:`InvalidFhirError` unless ``document`` is a valid FHIR resource of ``version``:
    well formed (the model), and every code with a required binding from its value set
    (:mod:`~ledger.records.fhir_bindings`, checked once the structure is valid).

    The error's details name the resource type, the version, each failing field (``errors``: a path
    such as ``entry.1.resource.code``) and the same as an ``OperationOutcome`` (a bad code is an
    issue ``code-invalid`` at ``Bundle.entry[1].resource.status``).
    """
    resource_type = document.get("resourceType")
    if not isinstance(resource_type, str):
        problem = {"path": ("resourceType",), "problem": "must be a string", "type": "string_type"}
        raise _refusal("resourceType must be a string", version, "Resource", [problem])
    model = _model(version, resource_type)
    if model is None:
        problem = {"path": ("resourceType",), "problem": "not a resource type", "type": "unknown_resource_type"}
        raise _refusal(f"unknown FHIR {version} resource type {resource_type!r}", version, resource_type, [problem])
    if unknown := _unknown_types(document, version):
        raise _refusal(f"not a valid FHIR {version} {resource_type}", version, resource_type, unknown)
    try:
        model.model_validate(document)
    except ValidationError as err:
        problems = [
            {"path": _path(e["loc"], e["type"]), "problem": e["msg"], "type": e["type"]}
            for e in err.errors(include_url=False, include_input=False)
        ]
        raise _refusal(f"not a valid FHIR {version} {resource_type}", version, resource_type, problems) from err
    if codes := required_code_problems(document, version):
        message = f"not a valid FHIR {version} {resource_type}: a code outside its required value set"
        raise _refusal(message, version, resource_type, codes)


def bundle_entries(bundle: dict[str, Any], *, limit: int) -> list[dict[str, Any]]:
    """The resources of a (valid) Bundle's entries, in entry order, to register one record each.

    Raises:
        InputError: The document is not a Bundle of a type in :data:`SPLITTABLE_BUNDLES`, has no
            entries, or an entry has no resource (a transaction's ``DELETE``, say): every entry
            must become a record, or none does.
        PayloadTooLargeError: More than ``limit`` entries.
    """
    if bundle.get("resourceType") != "Bundle":
        raise InputError('bundle "entries" needs a FHIR Bundle document', field="bundle")
    if bundle.get("type") not in SPLITTABLE_BUNDLES:
        raise InputError(
            f"only a {' or '.join(SPLITTABLE_BUNDLES)} Bundle is registered per entry, not {bundle.get('type')!r}",
            field="document.type",
        )
    entries = bundle.get("entry") or []
    if not entries:
        raise InputError("the Bundle has no entries to register", field="document.entry")
    if len(entries) > limit:
        raise PayloadTooLargeError(f"at most {limit} records per request", limit=limit, count=len(entries))
    resources = []
    for index, entry in enumerate(entries):
        resource = entry.get("resource")
        if not isinstance(resource, dict):
            raise InputError(f"entry {index} has no resource to register", field=f"document.entry.{index}.resource")
        resources.append(resource)
    return resources
