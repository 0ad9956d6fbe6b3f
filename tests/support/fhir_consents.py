"""IHE PCF-shaped FHIR Consents for tests, and the patient's EIP-712 signature over their terms."""

from __future__ import annotations

import time
from typing import Any

from eth_account.signers.local import LocalAccount

from ledger.consent.typed_data import grant_set_typed_data, revocation_set_typed_data, sign_typed_data
from ledger.fhir.consent import GRANTING, read_consent, with_signature

ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
IRCP = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP"}]}


def pcf_consent(
    patient: str,
    grantee: str,
    purposes: tuple[str, ...] = ("TREAT",),
    *,
    classes: tuple[str, ...] = ("Observation",),
    performer: str | None = None,
    period: dict[str, str] | None = None,
    **provision: Any,
) -> dict[str, Any]:
    """A basic PCF Consent: ``patient`` permits ``grantee`` (IRCP) ``classes`` for ``purposes``."""
    body: dict[str, Any] = {
        "type": "permit",
        "period": period or {"start": "2020-01-01", "end": "2099-12-31"},
        "actor": [{"role": IRCP, "reference": {"reference": f"Organization/{grantee}"}}],
        "purpose": [{"system": ACT_REASON, "code": p} for p in purposes],
    }
    if classes:
        body["class"] = [{"system": "http://hl7.org/fhir/resource-types", "code": c} for c in classes]
    body.update(provision)
    return {
        "resourceType": "Consent",
        "status": "active",
        "scope": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]
        },
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": f"Patient/{patient}"},
        "dateTime": "2026-01-01",
        "performer": [{"reference": performer or f"Patient/{patient}"}],
        "policy": [{"uri": "https://example.org/policies/privacy-v1"}],
        "provision": body,
    }


def signed_consent(
    domain: dict[str, Any],
    nonce: int,
    signer: LocalAccount,
    resource: dict[str, Any],
    *,
    deadline: int | None = None,
    name_signer: bool = False,
) -> dict[str, Any]:
    """``resource`` with ``signer``'s ConsentGrantSet (status active) or ConsentRevocationSet (status
    inactive) signature over its terms, as a client builds it."""
    deadline = int(time.time()) + 600 if deadline is None else deadline
    withdrawing = resource["status"] != GRANTING
    document = read_consent({**resource, "status": GRANTING})
    build = revocation_set_typed_data if withdrawing else grant_set_typed_data
    typed = build(domain, document.consent, signer.address, nonce, deadline)
    return with_signature(resource, deadline, sign_typed_data(signer, typed), signer.address if name_signer else None)
