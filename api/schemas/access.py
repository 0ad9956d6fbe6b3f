"""Consent-gated access and break-glass: bodies, answers, and the documented refusal."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from api.schemas.common import (
    EXAMPLE_PATIENT,
    EXAMPLE_TX,
    Address,
    ChainAddress,
    Code,
    Hex32,
    Purpose,
    RecordId,
    Schema,
    camel_config,
)
from ledger.consent.access import EMERGENCY_PURPOSE
from ledger.consent.access_trail import AccessAttempt
from ledger.store.apps import Organisation


class AccessIn(Schema):
    """The caller's organisation asks to access ``scope`` data of ``patient`` for ``purpose``."""

    patient: Address
    scope: Code
    purpose: Purpose

    model_config = camel_config({"patient": EXAMPLE_PATIENT, "scope": "Observation", "purpose": "TREAT"})


class BreakGlassIn(Schema):
    """Emergency access without consent; ``reason`` is a code (never free text about the patient)."""

    patient: ChainAddress
    scope: Code
    reason: Code
    purpose: Purpose = Field(default=EMERGENCY_PURPOSE)

    model_config = camel_config(
        {"patient": EXAMPLE_PATIENT, "scope": "*", "reason": "UNCONSCIOUS", "purpose": EMERGENCY_PURPOSE}
    )


class AccessOut(Schema):
    """Access granted, and the audit record that proves it was asked for."""

    decision: Literal["allowed", "break_glass"]
    patient: str
    organisation: str
    scope: str
    purpose: str
    reason: str | None = Field(description="the break-glass reason code")
    break_glass: bool
    break_glass_tx: Hex32 | None
    block_number: int | None = Field(description="the block recording a break-glass access")
    audit_record_id: RecordId

    model_config = camel_config(
        {
            "decision": "break_glass",
            "patient": EXAMPLE_PATIENT,
            "organisation": "General Hospital",
            "scope": "*",
            "purpose": EMERGENCY_PURPOSE,
            "reason": "UNCONSCIOUS",
            "breakGlass": True,
            "breakGlassTx": EXAMPLE_TX,
            "blockNumber": 58,
            "auditRecordId": "4f1c2b9e0d7a4e53b8a61f0c9d2e7a31",
        }
    )


DENIED: dict[int | str, dict[str, Any]] = {
    403: {
        "description": (
            "consent_required (details.reason: no_consent, expired, not_yet_valid, revoked), forbidden, or "
            "for break-glass not_an_emergency_purpose (details.purpose); the attempt is in the audit trail"
        ),
        "content": {
            "application/json": {
                "example": {
                    "code": "consent_required",
                    "message": "the patient's consent does not permit this access (revoked)",
                    "details": {
                        "reason": "revoked",
                        "states": {"Observation": "revoked", "*": "none"},
                        "audit_record_id": "4f1c2b9e0d7a4e53b8a61f0c9d2e7a31",
                    },
                }
            }
        },
    }
}


def access_json(
    organisation: Organisation, attempt: AccessAttempt, audit_record_id: str, block: int | None = None
) -> dict[str, Any]:
    """An ``AccessOut``."""
    break_glass = attempt.decision == "break_glass"
    return {
        "decision": attempt.decision,
        "patient": attempt.patient,
        "organisation": organisation.name,
        "scope": attempt.scope,
        "purpose": attempt.purpose,
        "reason": attempt.reason if break_glass else None,
        "breakGlass": break_glass,
        "breakGlassTx": "0x" + attempt.break_glass_tx.hex() if attempt.break_glass_tx else None,
        "blockNumber": block,
        "auditRecordId": audit_record_id,
    }
