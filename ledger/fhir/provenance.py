"""The ``Provenance`` of an anchored record: who anchored it, where, and its receipt.

``Provenance/<record id>``: ``target`` is the record (identifier :data:`~ledger.fhir.systems.RECORD_SYSTEM`,
with its SHA-256 digest); ``recorded`` is when its Merkle root was anchored; the ``agent`` is the
organisation whose chain account anchored it; the ``entity`` (role ``source``) is the anchoring
transaction; ``signature`` carries the record's receipt itself (``sigFormat``
:data:`~ledger.fhir.systems.RECEIPT_MEDIA_TYPE`, ``data`` its JSON in base64), which anyone can check
against any node of the chain with ``careledger-audit verify``.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from ledger.exceptions import NotFoundError
from ledger.fhir import systems
from ledger.fhir.consent_resources import Viewer, fhir_instant
from ledger.records.receipts import Receipt
from ledger.store.apps import Organisation
from ledger.store.database import Connection
from ledger.store.records import StoredRecord, get_record

VERIFICATION_SIGNATURE = "1.2.840.10065.1.12.1.5"


def record_provenance(record_id: str, receipt: Receipt, *, organisation: str) -> dict[str, Any]:
    """The Provenance of ``record_id``, anchored as ``receipt`` says by the organisation named ``organisation``."""
    anchorer = {"reference": f"Organization/{receipt.anchorer}", "display": organisation}
    recorded = fhir_instant(receipt.anchored_at)
    transaction = f"eip155:{receipt.chain_id}:0x{receipt.transaction_hash.hex()}"
    return {
        "resourceType": "Provenance",
        "id": record_id,
        "target": [
            {
                "identifier": {"system": systems.RECORD_SYSTEM, "value": record_id},
                "display": f"record {record_id}, SHA-256 0x{receipt.digest.hex()}",
            }
        ],
        "recorded": recorded,
        "agent": [
            {
                "type": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                            "code": "author",
                        }
                    ]
                },
                "who": anchorer,
            }
        ],
        "entity": [
            {
                "role": "source",
                "what": {
                    "identifier": {"system": systems.TRANSACTION_SYSTEM, "value": transaction},
                    "display": f"Merkle root 0x{receipt.root.hex()} anchored in block {receipt.block_number}",
                },
            }
        ],
        "signature": [
            {
                "type": [
                    {
                        "system": systems.SIGNATURE_TYPE,
                        "code": VERIFICATION_SIGNATURE,
                        "display": "Verification Signature",
                    }
                ],
                "when": recorded,
                "who": anchorer,
                "sigFormat": systems.RECEIPT_MEDIA_TYPE,
                "data": base64.b64encode(receipt.to_json().encode("utf-8")).decode("ascii"),
            }
        ],
    }


def readable_provenance(
    conn: Connection,
    viewer: Viewer,
    record_id: str,
    *,
    receipt_of: Callable[[StoredRecord], Receipt | None],
    organisation_of: Callable[[int], Organisation],
) -> dict[str, Any]:
    """The Provenance of a record the viewer may see: the organisation that registered it, or the
    patient it is about. Any other record, and one not anchored (final) yet, has none to show.

    Raises:
        NotFoundError: As said.
    """
    record = get_record(conn, record_id)
    if record is not None:
        organisation = organisation_of(record.organisation_id)
        own = viewer.organisation is not None and organisation.address.lower() == viewer.organisation.lower()
        patients = viewer.patient is not None and (record.patient or "").lower() == viewer.patient.lower()
        receipt = receipt_of(record) if own or patients else None
        if receipt is not None:
            return record_provenance(record_id, receipt, organisation=organisation.name)
    raise NotFoundError(
        f"no Provenance {record_id!r}: no such record, or not anchored yet", resource=f"Provenance/{record_id}"
    )
