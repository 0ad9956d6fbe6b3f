"""Public verification: is this document anchored, and does this receipt hold? No API key needed.

A mismatch is an answer, not an error: the response says what was compared and which step failed.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from fastapi import APIRouter

from api.deps import ServiceDep
from api.limits import DocumentRoute
from api.schemas.verify import VerifyIn
from ledger.chain.indexer import indexed_record_status
from ledger.records.lookup import Anchored, Waiting, anchorer_organisation, anchorings
from ledger.records.payloads import payload_digest
from ledger.records.receipts import Receipt, verify_receipt
from ledger.values import hex0x

router = APIRouter(prefix="/v1", tags=["verification"], route_class=DocumentRoute)


def _anchoring(found: Anchored | Waiting) -> dict[str, Any]:
    if isinstance(found, Waiting):
        return {"anchored": False, "status": found.status}
    return {
        "anchored": True,
        "organisation": found.organisation,
        "anchorer": found.anchorer,
        "anchoredAt": found.anchored_at,
        "blockNumber": found.block_number,
        "transactionHash": hex0x(found.transaction_hash),
        "root": hex0x(found.root),
        "amendedBy": hex0x(found.amended_by) if found.amended_by else None,
        "retracted": found.retraction_reason is not None,
        "retractionReason": found.retraction_reason,
    }


@router.post("/verify", summary="Verify a document, digest or receipt against the chain")
def verify(body: VerifyIn, service: ServiceDep) -> dict[str, Any]:
    """With a receipt: every step is checked (digest, leaf, proof, chain id, contract, and the root's
    anchor block, anchorer and time as the chain records them). Without: records with that digest
    are looked up and their anchoring read back. For a check that trusts nothing of this service,
    run `careledger-audit verify` against any node."""
    digest = service.cpu.call(payload_digest, body.document, body.content, body.digest)
    if body.receipt is None:
        assert digest is not None  # the schema requires a receipt or a payload
        found = anchorings(service.db.conn, digest, lambda organisation_id: service.organisation(organisation_id).name)
        anchored = any(isinstance(a, Anchored) for a in found)
        return {
            "match": anchored,
            "digest": hex0x(digest),
            "anchored": anchored,
            "anchorings": [_anchoring(a) for a in found],
            "message": "anchored"
            if anchored
            else ("registered, not anchored yet" if found else "no record with this digest is known"),
        }
    receipt = Receipt.parse(body.receipt)
    # The anchor is read from the chain (once per root); the proof is checked here; amendments and
    # retractions come from the chain event index. The contract's own verifyRecord is left to auditors.
    result = verify_receipt(
        receipt,
        document_digest=digest,
        anchors=service.ledger.anchors,
        contract_verdict=False,
        status_of=partial(indexed_record_status, service.db.conn),
    )
    return {
        "match": result.valid,
        "digest": hex0x(receipt.digest),
        "anchored": result.anchored,
        "mismatches": [c.name for c in result.failures],
        "checks": [
            {"step": c.name, "ok": c.ok, "detail": c.detail, "expected": c.expected, "actual": c.actual}
            for c in result.checks
        ],
        "anchoredAt": receipt.anchored_at if result.valid else None,
        "organisation": anchorer_organisation(service.db.conn, receipt.anchorer) if result.valid else None,
        "amendedBy": result.amended_by,
        "retracted": result.retraction_reason is not None,
        "retractionReason": result.retraction_reason,
    }
