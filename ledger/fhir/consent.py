"""An IHE PCF-shaped FHIR R4 ``Consent`` read as a consent document, and the terms its patient signs.

How a Consent maps onto the ledger (every other shape is refused with the element named, never read
more narrowly or more widely than it says):

* ``patient``: ``Patient/<address>``, the patient's chain address.
* ``performer``: exactly one, who signs: the patient (``Patient/<the same address>``) or a guardian
  (``RelatedPerson/<address>``, appointed on chain). The signature extension may name another signer
  (``signer``): the patient withdrawing what a guardian gave, say.
* ``scope``: ``consentscope#patient-privacy``; ``status``: ``active`` to grant, ``inactive`` to withdraw.
* ``provision``: one ``permit`` provision, no nested provisions, no ``action``, ``data`` or
  ``dataPeriod``. Its ``actor``: exactly one, role ``v3-ParticipationType#IRCP``, the grantee
  ``Organization/<address>``. Its ``purpose``: one or more HL7 v3 ActReason codes the ledger knows
  (:data:`ledger.consent.codes.PURPOSES_OF_USE`). Its data, from at most one of ``class``
  (``http://hl7.org/fhir/resource-types``: the resource type is the scope), ``code`` (LOINC or SNOMED
  CT: ``LOINC:<code>``, ``SNOMED:<code>``) and ``securityLabel`` (``confidentiality:<code>``,
  ``sensitivity:<code>``); several values of one element are each a scope; none means all data
  (``*``). Two of those elements together mean "data that is both", which flat scope codes cannot say.
* ``provision.period``: the window; a missing start is 0, a missing end is no end (2^64-1); a date
  or dateTime is read at its precision (an end of ``2026-12-31`` includes that whole day, UTC).
* no ``modifierExtension`` and no ``implicitRules`` anywhere (rules the ledger would have to know).

Every scope and purpose pair is one consent key, granted whole by one ``ConsentGrantSet`` signature.

The **terms** are what the patient signs: the SHA-256 of the RFC 8785 form of the Consent without
``id``, ``meta``, ``status`` and the signature extension (:data:`ledger.fhir.systems.SIGNATURE_EXTENSION`,
which carries the signature and its deadline). The server sets ``id`` and ``meta``; the status is the
chain's (a grant signature means active, a revocation signature inactive); the rest is exactly what
the patient saw. Anyone holding the resource recomputes the digest and finds it on chain in the
``ConsentSetGranted`` event.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from ledger.consent.codes import ALL_DATA, PURPOSES_OF_USE
from ledger.consent.relay import Signed
from ledger.consent.terms import UINT64_MAX, ConsentSet
from ledger.exceptions import InputError, InvalidHexError, UnsupportedFhirError
from ledger.fhir import systems
from ledger.records.fhir import validate_fhir
from ledger.records.hashing import canonical_json
from ledger.values import checksum

GRANTING: Final = "active"
WITHDRAWN: Final = "inactive"
UNSIGNED_ELEMENTS: Final = ("id", "meta", "status", "_status")
"""Top-level elements outside the signed terms (the server's, or the chain's)."""

DATA_ELEMENTS: Final[dict[str, dict[str, str]]] = {
    "class": {systems.RESOURCE_TYPES: ""},
    "code": {systems.LOINC: "LOINC:", systems.SNOMED: "SNOMED:"},
    "securityLabel": {systems.CONFIDENTIALITY: "confidentiality:", systems.ACT_CODE: "sensitivity:"},
}
"""Per provision element, the code systems read as scopes and the prefix of their scope codes."""
_REFERENCE: Final = re.compile(r"^(Patient|RelatedPerson|Organization)/(0x[0-9a-fA-F]{40})$")
_DATE_TIME: Final = re.compile(
    r"^(?P<y>\d{4})(-(?P<m>\d{2})(-(?P<d>\d{2})(T(?P<H>\d{2}):(?P<M>\d{2}):(?P<S>\d{2})(\.\d+)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2}))?)?)?$"
)


@dataclass(frozen=True)
class ConsentDocument:
    """A Consent read: the consent document it grants, its status, its signed terms and the signature."""

    consent: ConsentSet
    status: str
    signer: str
    terms_json: bytes
    signed: Signed | None

    @property
    def terms(self) -> bytes:
        return self.consent.terms


def _unsupported(message: str, expression: str) -> UnsupportedFhirError:
    return UnsupportedFhirError(message, field=expression, expression=expression)


def _invalid(message: str, expression: str) -> InputError:
    return InputError(message, field=expression, expression=expression)


def terms_document(resource: dict[str, Any]) -> dict[str, Any]:
    """The Consent as signed: without ``id``, ``meta``, ``status`` and the signature extension."""
    signed = {k: v for k, v in resource.items() if k not in UNSIGNED_ELEMENTS}
    extensions = [e for e in signed.get("extension", []) if e.get("url") != systems.SIGNATURE_EXTENSION]
    if extensions:
        signed["extension"] = extensions
    else:
        signed.pop("extension", None)
    return signed


def terms_digest(resource: dict[str, Any]) -> bytes:
    """The digest a patient signs for a Consent: SHA-256 of :func:`terms_document` in RFC 8785 form."""
    return hashlib.sha256(canonical_json(terms_document(resource))).digest()


def read_consent(resource: dict[str, Any], *, statuses: tuple[str, ...] = (GRANTING,)) -> ConsentDocument:
    """Validate a Consent as FHIR R4 and read it as a consent document.

    Raises:
        InvalidFhirError: It is no valid R4 Consent (each failing field named).
        UnsupportedFhirError: It asks for what the ledger cannot hold as it says (the element named).
        InputError: A reference, period or signature is malformed.
    """
    if resource.get("resourceType") != "Consent":
        raise _invalid(f"expected a Consent, got {resource.get('resourceType')!r}", "resourceType")
    validate_fhir(resource, "4.0")
    _refuse_modifiers(resource, "Consent")
    if "implicitRules" in resource:
        raise _unsupported(
            "implicitRules must be understood to read a Consent; none are known here", "Consent.implicitRules"
        )
    status = resource.get("status")
    if status not in statuses:
        raise _unsupported(
            f"a Consent is accepted here with status {' or '.join(statuses)}, not {status!r}", "Consent.status"
        )
    _require_privacy_scope(resource)
    patient = _address(resource.get("patient"), ("Patient",), "Consent.patient")
    signer = _signer(resource, patient)
    grantee, scopes, purposes, window = _provision(resource.get("provision"))
    terms_json = canonical_json(terms_document(resource))
    consent = ConsentSet(patient, grantee, scopes, purposes, *window, hashlib.sha256(terms_json).digest())
    return ConsentDocument(consent, str(status), signer, terms_json, _signature(resource, signer))


def stored_document(terms_json: str) -> ConsentDocument:
    """A kept Consent's terms read back (its RFC 8785 form, which holds no ``status``) as the consent
    document they were granted as."""
    return read_consent({**json.loads(terms_json), "status": GRANTING})


def _refuse_modifiers(value: Any, path: str) -> None:
    if isinstance(value, dict):
        if "modifierExtension" in value:
            raise _unsupported(
                "a modifier extension changes what a Consent means; none are known here", f"{path}.modifierExtension"
            )
        for key, item in value.items():
            _refuse_modifiers(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _refuse_modifiers(item, f"{path}[{index}]")


def _codings(concept: Any) -> list[dict[str, Any]]:
    return [c for c in (concept or {}).get("coding", []) if isinstance(c, dict)]


def _require_privacy_scope(resource: dict[str, Any]) -> None:
    if not any(
        c.get("system") == systems.CONSENT_SCOPE and c.get("code") == systems.PATIENT_PRIVACY
        for c in _codings(resource.get("scope"))
    ):
        raise _unsupported(
            f"only privacy consents ({systems.CONSENT_SCOPE}#{systems.PATIENT_PRIVACY}) are recorded here",
            "Consent.scope",
        )


def _address(reference: Any, types: tuple[str, ...], expression: str) -> str:
    """The chain address of a reference ``<Type>/<address>`` of one of ``types``."""
    text = reference.get("reference") if isinstance(reference, dict) else None
    match = _REFERENCE.fullmatch(text) if isinstance(text, str) else None
    if match is None or match.group(1) not in types:
        wanted = " or ".join(f"{t}/<address>" for t in types)
        raise _unsupported(f"{expression} must be a reference {wanted} (a chain address)", expression)
    try:
        return checksum(match.group(2))
    except InvalidHexError as err:
        raise _invalid(f"{expression}: {err.message}", expression) from err


def _signer(resource: dict[str, Any], patient: str) -> str:
    performers = resource.get("performer") or []
    if len(performers) != 1:
        raise _unsupported("exactly one performer signs a Consent: the patient or a guardian", "Consent.performer")
    signer = _address(performers[0], ("Patient", "RelatedPerson"), "Consent.performer[0]")
    if performers[0]["reference"].startswith("Patient/") and signer != patient:
        raise _unsupported("a performing Patient is the Consent's own patient", "Consent.performer[0]")
    return signer


def _provision(provision: Any) -> tuple[str, tuple[str, ...], tuple[str, ...], tuple[int, int]]:
    path = "Consent.provision"
    if not isinstance(provision, dict):
        raise _unsupported("a Consent grants through its provision; this one has none", path)
    if provision.get("type") != "permit":
        raise _unsupported("only a permit provision is recorded (a deny grants nothing to record)", f"{path}.type")
    for element in ("provision", "action", "data", "dataPeriod"):
        if element in provision:
            raise _unsupported(f"provision.{element} cannot be held by the ledger as it says", f"{path}.{element}")
    return (
        _grantee(provision.get("actor") or []),
        _scopes(provision),
        _purposes(provision.get("purpose") or []),
        _window(provision.get("period") or {}),
    )


def _grantee(actors: list[Any]) -> str:
    path = "Consent.provision.actor"
    if len(actors) != 1:
        raise _unsupported("exactly one actor, the recipient Organization, is granted per Consent", path)
    (actor,) = actors
    if not any(
        c.get("system") == systems.PARTICIPATION_TYPE and c.get("code") == systems.INFORMATION_RECIPIENT
        for c in _codings(actor.get("role"))
    ):
        raise _unsupported(
            f"the actor's role must be {systems.PARTICIPATION_TYPE}#{systems.INFORMATION_RECIPIENT}", f"{path}[0].role"
        )
    return _address(actor.get("reference"), ("Organization",), f"{path}[0].reference")


def _scopes(provision: dict[str, Any]) -> tuple[str, ...]:
    given = [element for element in DATA_ELEMENTS if provision.get(element)]
    if not given:
        return (ALL_DATA,)
    if len(given) > 1:
        raise _unsupported(
            f"provision.{given[0]} and provision.{given[1]} together mean data that is both, which scopes cannot say",
            f"Consent.provision.{given[1]}",
        )
    (element,) = given
    found: list[str] = []
    for index, value in enumerate(provision[element]):
        path = f"Consent.provision.{element}[{index}]"
        codings = _codings(value) if element == "code" else [value]
        if len(codings) != 1:
            raise _unsupported("each data concept is given by exactly one coding", path)
        system, code = codings[0].get("system"), codings[0].get("code")
        prefix = DATA_ELEMENTS[element].get(system) if isinstance(system, str) else None
        if prefix is None or not isinstance(code, str):
            known = ", ".join(DATA_ELEMENTS[element])
            raise _unsupported(f"provision.{element} is read from {known}, not {system!r}", path)
        found.append(prefix + code)
    if len(set(found)) != len(found):
        raise _invalid(f"provision.{element} names a data class twice", f"Consent.provision.{element}")
    return tuple(found)


def _purposes(purposes: list[Any]) -> tuple[str, ...]:
    path = "Consent.provision.purpose"
    if not purposes:
        raise _unsupported("a consent is given for purposes of use; name them in provision.purpose", path)
    found: list[str] = []
    for index, coding in enumerate(purposes):
        code = coding.get("code")
        if coding.get("system") != systems.ACT_REASON or code not in PURPOSES_OF_USE:
            raise _unsupported(
                f"purposes are {systems.ACT_REASON} codes among {', '.join(PURPOSES_OF_USE)}", f"{path}[{index}]"
            )
        found.append(str(code))
    if len(set(found)) != len(found):
        raise _invalid("provision.purpose names a purpose twice", path)
    return tuple(found)


def _window(period: dict[str, Any]) -> tuple[int, int]:
    start = _instant(period["start"], "Consent.provision.period.start", end=False) if "start" in period else 0
    until = _instant(period["end"], "Consent.provision.period.end", end=True) if "end" in period else UINT64_MAX
    if start >= until:
        raise _invalid("provision.period ends before it starts", "Consent.provision.period")
    return start, until


def _instant(text: str, expression: str, *, end: bool) -> int:
    """Unix seconds of a FHIR date or dateTime: its start, or (``end``) the first second after it."""
    match = _DATE_TIME.fullmatch(text)
    if match is None:
        raise _invalid(f"not a FHIR dateTime: {text!r}", expression)
    year, month, day = int(match["y"]), int(match["m"] or 1), int(match["d"] or 1)
    if match["H"] is None:
        moment = datetime(year, month, day, tzinfo=UTC)
        if end:
            if match["d"]:
                moment += timedelta(days=1)
            elif match["m"]:
                moment += timedelta(days=calendar.monthrange(year, month)[1])
            else:
                moment = moment.replace(year=year + 1)
        return int(moment.timestamp())
    tz = match["tz"]
    offset = (
        timedelta(0) if tz == "Z" else (1 if tz[0] == "+" else -1) * timedelta(hours=int(tz[1:3]), minutes=int(tz[4:6]))
    )
    moment = datetime(year, month, day, int(match["H"]), int(match["M"]), int(match["S"]), tzinfo=UTC) - offset
    return int(moment.timestamp()) + (1 if end else 0)


def _signature(resource: dict[str, Any], signer: str) -> Signed | None:
    """The EIP-712 signature the Consent carries (its deadline and bytes), or None if it carries none."""
    found = [e for e in resource.get("extension", []) if e.get("url") == systems.SIGNATURE_EXTENSION]
    if not found:
        return None
    path = f"Consent.extension('{systems.SIGNATURE_EXTENSION}')"
    if len(found) > 1:
        raise _invalid("a Consent carries one signature", path)
    parts = {e.get("url"): e for e in found[0].get("extension", [])}
    deadline = parts.get("deadline", {}).get("valueUnsignedInt")
    signature = parts.get("signature", {}).get("valueBase64Binary")
    named = parts.get("signer", {}).get("valueString")
    if not isinstance(deadline, int) or not isinstance(signature, str):
        raise _invalid(
            "the signature extension holds deadline (valueUnsignedInt) and signature (valueBase64Binary)", path
        )
    try:
        raw = base64.b64decode(signature, validate=True)
        signer = signer if named is None else checksum(named)
    except binascii.Error as err:
        raise _invalid("the signature is not base64", path) from err
    except InvalidHexError as err:
        raise _invalid(f"the signer is no address: {err.message}", path) from err
    return Signed(signer, deadline, raw)


def with_signature(
    resource: dict[str, Any], deadline: int, signature: bytes, signer: str | None = None
) -> dict[str, Any]:
    """``resource`` carrying ``signature`` and its ``deadline`` in the signature extension (for clients);
    ``signer`` when it is not the performer (the patient withdrawing a Consent a guardian gave)."""
    parts: list[dict[str, Any]] = [
        {"url": "deadline", "valueUnsignedInt": deadline},
        {"url": "signature", "valueBase64Binary": base64.b64encode(signature).decode("ascii")},
    ]
    if signer is not None:
        parts.append({"url": "signer", "valueString": checksum(signer)})
    extension = {"url": systems.SIGNATURE_EXTENSION, "extension": parts}
    others = [e for e in resource.get("extension", []) if e.get("url") != systems.SIGNATURE_EXTENSION]
    return {**resource, "extension": [*others, extension]}
