"""The access trail: pages of attempts, each with the anchoring of its audit record."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

import orjson
from fastapi import Query
from pydantic import ConfigDict, Field
from pydantic.alias_generators import to_camel

from api.schemas.common import EXAMPLE_PATIENT, MAX_JSON_INTEGER, Hex32, RecordId, Schema
from api.schemas.records import BatchOut, Stage, batch_json
from ledger.consent.access_trail import DOCUMENT_TYPE, DOCUMENT_VERSION, TrailEntry, TrailPage
from ledger.store.apps import Organisation
from ledger.values import checksum

DEFAULT_PAGE = 100
MAX_PAGE = 500


class TrailOrganisationOut(Schema):
    id: int
    name: str
    address: str


class AuditEntryOut(Schema):
    """One access attempt, with the anchoring of its audit record (fetch the receipt by ``recordId``)."""

    id: int = Field(description="position in the trail; pass the last one as `after` for the next page")
    record_id: RecordId
    patient: str
    organisation: TrailOrganisationOut
    app_id: int
    scope: str
    purpose: str
    decision: Literal["allowed", "denied", "break_glass"]
    reason: str | None
    break_glass: bool
    break_glass_tx: Hex32 | None
    time: float
    document: dict[str, Any] = Field(description="the anchored document (its RFC 8785 form is what was hashed)")
    status: Stage
    batch: BatchOut | None


class AuditPageOut(Schema):
    entries: list[AuditEntryOut]
    next_after: int | None = Field(description="`after` for the next page; null on the last page")

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "entries": [
                        {
                            "id": 7,
                            "recordId": "4f1c2b9e0d7a4e53b8a61f0c9d2e7a31",
                            "patient": EXAMPLE_PATIENT,
                            "organisation": {
                                "id": 2,
                                "name": "General Hospital",
                                "address": "0x5B38Da6a701c568545dCfcB03FcB875f56beddC4",
                            },
                            "appId": 3,
                            "scope": "Observation",
                            "purpose": "TREAT",
                            "decision": "denied",
                            "reason": "revoked",
                            "breakGlass": False,
                            "breakGlassTx": None,
                            "time": 1767229200.123,
                            "document": {
                                "type": DOCUMENT_TYPE,
                                "version": DOCUMENT_VERSION,
                                "decision": "denied",
                                "reason": "revoked",
                                "decidedAt": {
                                    "chainId": 31337,
                                    "registry": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
                                    "block": 56,
                                    "blockHash": "0x" + "3c" * 32,
                                },
                                "consent": {
                                    "key": f"{EXAMPLE_PATIENT}:0x5B38Da6a701c568545dCfcB03FcB875f56beddC4"
                                    ":Observation:TREAT",
                                    "fhirConsent": None,
                                },
                            },
                            "status": "anchored",
                            "batch": {
                                "root": "0x" + "ab" * 32,
                                "leafCount": 12,
                                "transactionHash": "0x" + "5e" * 32,
                                "blockNumber": 57,
                                "anchoredAt": 1767229202,
                                "anchorer": "0x5B38Da6a701c568545dCfcB03FcB875f56beddC4",
                            },
                        }
                    ],
                    "nextAfter": None,
                }
            ]
        },
    )


After = Annotated[int, Query(ge=0, le=MAX_JSON_INTEGER, description="return entries after this id")]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="at most this many entries")]


def entry_json(entry: TrailEntry, organisation: Organisation) -> dict[str, Any]:
    """An ``AuditEntryOut``."""
    event = entry.event
    return {
        "id": event.id,
        "recordId": event.record_id,
        "patient": checksum(event.patient),
        "organisation": {"id": organisation.id, "name": organisation.name, "address": organisation.address},
        "appId": event.app_id,
        "scope": event.scope,
        "purpose": event.purpose,
        "decision": event.decision,
        "reason": event.reason,
        "breakGlass": event.decision == "break_glass",
        "breakGlassTx": "0x" + event.chain_tx.hex() if event.chain_tx else None,
        "time": event.created_at,
        "document": orjson.loads(event.document),
        "status": entry.standing.stage,
        "batch": batch_json(entry.standing),
    }


def page_json(page: TrailPage, organisation_of: Callable[[int], Organisation]) -> dict[str, Any]:
    """An ``AuditPageOut``."""
    return {
        "entries": [entry_json(e, organisation_of(e.event.organisation_id)) for e in page.entries],
        "nextAfter": page.next_after,
    }
