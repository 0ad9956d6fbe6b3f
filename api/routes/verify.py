"""Verification: does this receipt hold (public), and is this document among my records (API key)?

Public verification takes receipts only: a receipt carries its record's salt, so checking one
reveals nothing its holder did not already have. Looking a document or digest up in the store
needs an API key and searches only the caller's organisation's records: otherwise anyone could
confirm a guessed document (a templated FHIR resource, a predictable access-trail entry) and undo
the salts. A mismatch is an answer, not an error: the response says what was compared and which
step failed. Public verification is rate-limited per client.
"""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from api.declared_errors import raises
from api.deps import Reader, ServiceDep
from api.limits import DocumentRoute
from api.rate_limit import RateLimiter, app_limits, client_address
from api.schemas.verify import LookupIn, LookupOut, VerifyIn, VerifyOut
from ledger.exceptions import (
    ChainError,
    ChainUnavailableError,
    InputError,
    InvalidProofError,
    RateLimitedError,
    StoreUnavailableError,
)
from ledger.records.lookup import Anchored, Waiting, anchorer_organisation, anchorings, indexed_record_status
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


async def public_verify_limit(request: Request, service: ServiceDep) -> RateLimiter:
    """The app's per-client budget of public verifications (``public_verify_per_minute``, a burst of
    as many refilled evenly; tests may set ``app.state.verify_limit``)."""
    return app_limits(
        request, "verify_limit", lambda: RateLimiter(service.settings.public_verify_per_minute, 60.0, "client")
    )


@raises(RateLimitedError)
def _client_limited(request: Request, limiter: Annotated[RateLimiter, Depends(public_verify_limit)]) -> None:
    limiter.take(client_address(request))


@router.post(
    "/verify",
    response_model=VerifyOut,
    summary="Verify a receipt against the chain (public)",
    dependencies=[Depends(_client_limited)],
)
@raises(InvalidProofError, InputError, StoreUnavailableError, ChainUnavailableError, ChainError)
def verify(body: VerifyIn, service: ServiceDep) -> dict[str, Any]:
    """Every step is checked (digest when a document is given, leaf, proof, chain id, contract, and
    the root's anchor block, anchorer and time as the chain records them). For a check that trusts
    nothing of this service, run `careledger-audit verify` against any node."""
    digest = service.cpu.call(payload_digest, body.document, body.content, body.digest)
    receipt = Receipt.parse(body.receipt, strict=True)  # numbers as the schema says: JSON integers
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


@router.post(
    "/verify/lookup",
    response_model=LookupOut,
    summary="Is this document or digest among my organisation's records, and anchored?",
)
@raises(InputError, StoreUnavailableError)
def lookup(body: LookupIn, caller: Reader, service: ServiceDep) -> dict[str, Any]:
    """Records of the caller's organisation with this digest, and where each was anchored (other
    organisations' records are never searched)."""
    digest = service.cpu.call(payload_digest, body.document, body.content, body.digest)
    assert digest is not None  # the schema requires exactly one payload
    found = anchorings(
        service.db.conn,
        digest,
        caller.organisation.id,
        lambda organisation_id: service.organisation(organisation_id).name,
    )
    anchored = any(isinstance(a, Anchored) for a in found)
    return {
        "match": anchored,
        "digest": hex0x(digest),
        "anchored": anchored,
        "anchorings": [_anchoring(a) for a in found],
        "message": "anchored"
        if anchored
        else ("registered, not anchored yet" if found else "no record of this organisation has this digest"),
    }
