"""A patient's accounting of disclosures (HIPAA 164.528): the period asked for, the answer's JSON, and
where the patient page checks receipts."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from fastapi import Query
from pydantic import BeforeValidator, Field

from api.schemas.common import EXAMPLE_GRANTEE, EXAMPLE_PATIENT, EXAMPLE_TX, Schema, camel_config
from ledger.consent.access_trail import DOCUMENT_TYPE, DOCUMENT_VERSION
from ledger.disclosures.accounting import (
    NOTES,
    Accounting,
    AccountingEntry,
    Section,
    refusal_description,
)
from ledger.disclosures.period import MAX_YEARS

ACCOUNTING_TYPE = "careledger-accounting-of-disclosures"
ACCOUNTING_VERSION = 1

DAY_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"


def _iso_day(value: Any) -> Any:
    """A day as ``YYYY-MM-DD`` only (pydantic's lax mode would also read ``0`` as 1970-01-01)."""
    if isinstance(value, str) and not re.fullmatch(DAY_PATTERN, value):
        raise ValueError("a day is written YYYY-MM-DD")
    return value


From = Annotated[
    date | None,
    Query(alias="from", description=f"first day (UTC, included); default: the earliest of {MAX_YEARS} years"),
    BeforeValidator(_iso_day),
]
To = Annotated[
    date | None, Query(alias="to", description="last day (UTC, included); default: today"), BeforeValidator(_iso_day)
]


class RecipientOut(Schema):
    """Who received the data (or, for a denied attempt, who asked)."""

    name: str
    account: str = Field(description="the organisation's account address on the chain")
    postal_address: None = Field(description="always null: CareLedger holds no postal addresses (see `notes`)")


class AccountingEntryOut(Schema):
    """One attempt: when, who, what, why, the answer, its anchored document and its receipt."""

    id: int = Field(description="position in the access trail")
    record_id: str = Field(description="the audit record anchoring this entry")
    date: str = Field(description="when, as anchored (ISO 8601, UTC)")
    time: float = Field(description="the same, in unix seconds")
    recipient: RecipientOut
    app_id: int
    scope: str
    description: str = Field(description="the data concerned, in plain words")
    purpose: str
    purpose_description: str
    decision: str = Field(description="allowed, break_glass or denied")
    reason: str | None = Field(description="why denied, or the break-glass reason code")
    reason_description: str | None = Field(description="why denied, in plain words")
    break_glass_tx: str | None = Field(description="the transaction recording a break-glass access")
    document: dict[str, Any] = Field(description="the anchored document (its RFC 8785 form is what was hashed)")
    status: str = Field(description="pending, sealed, confirming or anchored")
    receipt: dict[str, Any] | None = Field(description="the audit record's receipt, once anchored for good")


class PeriodOut(Schema):
    start: date = Field(alias="from")
    end: date = Field(alias="to")


class DeploymentOut(Schema):
    """The chain and RecordAnchor the receipts name (check them against any node of that chain)."""

    chain_id: int
    record_anchor: str


_EXAMPLE_ENTRY: dict[str, Any] = {
    "id": 7,
    "recordId": "00000000000000074f1c2b9e0d7a4e53",
    "date": "2026-03-02T09:15:04.120Z",
    "time": 1772442904.12,
    "recipient": {"name": "General Hospital", "account": EXAMPLE_GRANTEE, "postalAddress": None},
    "appId": 3,
    "scope": "Observation",
    "description": "test results and measurements (Observation)",
    "purpose": "TREAT",
    "purposeDescription": "treatment (TREAT)",
    "decision": "allowed",
    "reason": None,
    "reasonDescription": None,
    "breakGlassTx": None,
    "document": {"type": DOCUMENT_TYPE, "version": DOCUMENT_VERSION, "decision": "allowed", "...": "..."},
    "status": "anchored",
    "receipt": {"type": "careledger-receipt", "version": 2, "transactionHash": EXAMPLE_TX, "...": "..."},
}


class AccountingOut(Schema):
    """Every disclosure of the period, then break-glass accesses and denied attempts, oldest first."""

    type: Literal["careledger-accounting-of-disclosures"]
    version: Literal[1]
    patient: str
    period: PeriodOut
    generated_at: str
    deployment: DeploymentOut
    disclosures: list[AccountingEntryOut]
    break_glass: list[AccountingEntryOut]
    denied: list[AccountingEntryOut]
    notes: list[str]

    model_config = camel_config(
        {
            "type": ACCOUNTING_TYPE,
            "version": ACCOUNTING_VERSION,
            "patient": EXAMPLE_PATIENT,
            "period": {"from": "2020-12-03", "to": "2026-12-02"},
            "generatedAt": "2026-12-02T10:00:00.000Z",
            "deployment": {"chainId": 31337, "recordAnchor": EXAMPLE_GRANTEE},
            "disclosures": [_EXAMPLE_ENTRY],
            "breakGlass": [],
            "denied": [],
            "notes": list(NOTES),
        }
    )


class BundleEntryOut(Schema):
    full_url: str
    resource: dict[str, Any] = Field(description="an R4 AuditEvent")


class AuditEventBundleOut(Schema):
    """A FHIR R4 ``collection`` Bundle of ``AuditEvent``s (BALP-shaped), one per entry of the accounting."""

    resource_type: Literal["Bundle"]
    type: Literal["collection"]
    timestamp: str
    entry: list[BundleEntryOut] = Field(default_factory=list)


class AnchoringOut(Schema):
    """Where the patient page checks receipts' roots: this deployment's chain and RecordAnchor, and
    the public node to ask (null: the page asks this service, and says so)."""

    chain_id: int
    record_anchor: str
    public_rpc_url: str | None
    service: str = Field(description="this service's origin (the node it asks when no public one is set)")


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def entry_json(entry: AccountingEntry) -> dict[str, Any]:
    """An ``AccountingEntryOut``."""
    event = entry.event
    return {
        "id": event.id,
        "recordId": event.record_id,
        "date": entry.date,
        "time": event.created_at,
        "recipient": {"name": entry.recipient.name, "account": entry.recipient.address, "postalAddress": None},
        "appId": event.app_id,
        "scope": event.scope,
        "description": entry.description,
        "purpose": event.purpose,
        "purposeDescription": entry.purpose,
        "decision": event.decision,
        "reason": event.reason,
        "reasonDescription": refusal_description(event.reason) if entry.section == "denied" else None,
        "breakGlassTx": "0x" + event.chain_tx.hex() if event.chain_tx else None,
        "document": entry.document,
        "status": entry.stage,
        "receipt": entry.receipt.to_dict() if entry.receipt is not None else None,
    }


def accounting_json(accounting: Accounting, *, chain_id: int, record_anchor: str) -> dict[str, Any]:
    """An ``AccountingOut``."""

    def section(name: Section) -> list[dict[str, Any]]:
        return [entry_json(e) for e in accounting.section(name)]

    return {
        "type": ACCOUNTING_TYPE,
        "version": ACCOUNTING_VERSION,
        "patient": accounting.patient,
        "period": {"from": accounting.period.start, "to": accounting.period.end},
        "generatedAt": _iso(accounting.generated_at),
        "deployment": {"chainId": chain_id, "recordAnchor": record_anchor},
        "disclosures": section("disclosures"),
        "breakGlass": section("break_glass"),
        "denied": section("denied"),
        "notes": list(NOTES),
    }
