"""Public verification: is this document anchored, and does this receipt hold? No API key needed.

A mismatch is an answer, not an error: the response says what was compared and which step failed.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from fastapi import APIRouter

from api.deps import ServiceDep
from api.limits import LedgerRoute
from api.schemas.verify import VerifyIn
from api.service import Service
from ledger.chain.indexer import indexed_record_status
from ledger.exceptions import InputError
from ledger.records.hashing import digest_bytes, digest_json
from ledger.records.receipts import Receipt, verify_receipt
from ledger.store.apps import organisation_by_address
from ledger.store.records import get_batch, records_by_digest

router = APIRouter(prefix="/v1", tags=["verification"], route_class=LedgerRoute)


def _digest(body: VerifyIn) -> bytes | None:
    if body.document is not None:
        return digest_json(body.document)
    if body.content is not None:
        try:
            return digest_bytes(base64.b64decode(body.content, validate=True))
        except (binascii.Error, ValueError) as err:
            raise InputError("content is not valid base64", field="content") from err
    if body.digest is not None:
        return bytes.fromhex(body.digest[2:])
    return None


def _anchorings(service: Service, digest: bytes) -> list[dict[str, Any]]:
    """Where records with this digest were anchored, with their later amendments and retractions."""
    found = []
    for record in records_by_digest(service.db.conn, digest):
        batch = get_batch(service.db.conn, record.batch_id) if record.batch_id is not None else None
        if batch is None or not batch.final:
            waiting: dict[str, Any] = {"anchored": False, "status": "pending"}
            if batch is not None and batch.anchored:
                waiting["status"] = "confirming"
            found.append(waiting)
            continue
        status = indexed_record_status(service.db.conn, record.leaf)
        assert batch.tx_hash is not None
        found.append(
            {
                "anchored": True,
                "organisation": service.organisation(record.organisation_id).name,
                "anchorer": batch.anchorer,
                "anchoredAt": batch.anchored_at,
                "blockNumber": batch.block_number,
                "transactionHash": "0x" + batch.tx_hash.hex(),
                "root": "0x" + batch.root.hex(),
                "amendedBy": "0x" + status.amended_by.hex() if status.amended_by else None,
                "retracted": status.retraction_reason is not None,
                "retractionReason": status.retraction_reason,
            }
        )
    return found


@router.post("/verify", summary="Verify a document, digest or receipt against the chain")
def verify(body: VerifyIn, service: ServiceDep) -> dict[str, Any]:
    """With a receipt: every step is checked (digest, leaf, proof, chain id, contract, and the root's
    anchor block, anchorer and time as the chain records them). Without: records with that digest
    are looked up and their anchoring read back. For a check that trusts nothing of this service,
    run `careledger-audit verify` against any node."""
    digest = _digest(body)
    if body.receipt is None:
        assert digest is not None
        anchorings = _anchorings(service, digest)
        anchored = [a for a in anchorings if a["anchored"]]
        return {
            "match": bool(anchored),
            "digest": "0x" + digest.hex(),
            "anchored": bool(anchored),
            "anchorings": anchorings,
            "message": "anchored"
            if anchored
            else ("registered, not anchored yet" if anchorings else "no record with this digest is known"),
        }
    receipt = Receipt.parse(body.receipt)
    # The anchor is read from the chain (once per root); the proof is checked here; amendments and
    # retractions come from the chain event index. The contract's own verifyRecord is left to auditors.
    result = verify_receipt(
        receipt,
        document_digest=digest,
        anchors=service.ledger.anchors,
        contract_verdict=False,
        status_of=lambda leaf: indexed_record_status(service.db.conn, leaf),
    )
    return {
        "match": result.valid,
        "digest": "0x" + receipt.digest.hex(),
        "anchored": any(c.name == "anchored" and c.ok for c in result.checks),
        "mismatches": [c.name for c in result.failures],
        "checks": [
            {"step": c.name, "ok": c.ok, "detail": c.detail, "expected": c.expected, "actual": c.actual}
            for c in result.checks
        ],
        "anchoredAt": receipt.anchored_at if result.valid else None,
        "organisation": _organisation_name(service, receipt.anchorer) if result.valid else None,
        "amendedBy": result.amended_by,
        "retracted": result.retraction_reason is not None,
        "retractionReason": result.retraction_reason,
    }


def _organisation_name(service: Service, address: str) -> str | None:
    organisation = organisation_by_address(service.db.conn, address)
    return organisation.name if organisation else None
