"""A walk through the library on the embedded chain, without the API (``make demo``).

Opens (or creates and deploys) the ledger in ``--data-dir``, registers a few FHIR records as one
Merkle batch and writes their receipts, then a patient who holds their own key grants an
organisation consent by EIP-712 signature (a relayer pays the gas), the organisation's access is
checked, the patient revokes, and the access is checked again. Run it twice: the second run finds
the first run's chain, contracts and history.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from eth_account import Account
from rich.console import Console
from rich.table import Table

from ledger.config import Settings
from ledger.consent.terms import ConsentKey, GrantTerms
from ledger.consent.typed_data import grant_typed_data, revocation_typed_data, sign_typed_data
from ledger.records.hashing import digest_json, new_salt
from ledger.records.receipts import anchor_batch, verify_receipt
from ledger.runtime import open_ledger

SAMPLE_RECORDS = [
    {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
        "valueQuantity": {"value": 72, "unit": "beats/minute"},
    },
    {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8310-5", "display": "Body temperature"}]},
        "valueQuantity": {"value": 36.8, "unit": "Cel"},
    },
    {"resourceType": "Condition", "clinicalStatus": {"text": "active"}, "code": {"text": "Hypertension"}},
]


DataDirOption = Annotated[Path, typer.Option(help="Where the embedded chain and keys live.")]


def main(data_dir: DataDirOption = Path("data")) -> None:
    """Anchor records, grant and revoke consent, and verify receipts on the embedded chain."""
    console = Console()
    with open_ledger(Settings(data_dir=data_dir)) as ledger:
        deployment = ledger.deployment
        console.print(f"[bold]CareLedger[/] on chain {deployment.chain_id} (embedded, {data_dir}/)")
        console.print(f"  RecordAnchor    {deployment.record_anchor}")
        console.print(f"  ConsentRegistry {deployment.consent_registry}  (deployed in block {deployment.deploy_block})")

        hospital = ledger.anchorer("anchorer-demo-hospital")
        records = [(new_salt(), digest_json(doc)) for doc in SAMPLE_RECORDS]
        receipts = anchor_batch(ledger.anchors, records, hospital)
        receipt_dir = data_dir / "receipts"
        receipt_dir.mkdir(parents=True, exist_ok=True)
        table = Table(title=f"{len(receipts)} records anchored in block {receipts[0].block_number} (one transaction)")
        for column in ("record", "digest (SHA-256)", "receipt", "verified on chain"):
            table.add_column(column)
        for doc, receipt in zip(SAMPLE_RECORDS, receipts, strict=True):
            path = receipt_dir / f"{receipt.leaf.hex()[:16]}.json"
            path.write_text(receipt.to_json() + "\n", encoding="utf-8")
            verified = verify_receipt(receipt, document_digest=digest_json(doc), anchors=ledger.anchors)
            table.add_row(
                str(doc["resourceType"]),
                "0x" + receipt.digest.hex()[:16] + "…",
                str(path),
                "yes" if verified.valid else "NO",
            )
        console.print(table)

        patient = Account.create()  # the patient's own key: it never holds ether
        now = int(time.time())
        terms = GrantTerms(
            ConsentKey(patient.address, hospital.address, "Observation", "TREAT"),
            valid_from=now - 60,
            valid_until=now + 30 * 86_400,
        )
        consents = ledger.consents
        deadline = now + 600
        signature = sign_typed_data(
            patient,
            grant_typed_data(consents.domain, terms, patient.address, consents.nonce(patient.address), deadline),
        )
        consents.grant_by_signature(terms, patient.address, deadline, signature, ledger.relayer)
        allowed = consents.is_permitted(patient.address, hospital.address, "Observation", "TREAT")
        console.print(
            f"patient {patient.address} signed a grant; relayed. hospital may read Observation "
            f"for TREAT: [bold]{allowed}[/]"
        )
        signature = sign_typed_data(
            patient,
            revocation_typed_data(
                consents.domain, terms.key, patient.address, consents.nonce(patient.address), deadline
            ),
        )
        consents.revoke_by_signature(terms.key, patient.address, deadline, signature, ledger.relayer)
        allowed = consents.is_permitted(patient.address, hospital.address, "Observation", "TREAT")
        console.print(f"patient revoked; hospital may read Observation for TREAT: [bold]{allowed}[/]")
        history = consents.history(patient.address)
        console.print("history: " + ", ".join(f"{e.kind} (block {e.block_number})" for e in history))
        console.print(f"chain head: block {ledger.chain.block_number()}; data kept in {data_dir}/")


def run() -> None:
    """Console entry point."""
    typer.run(main)


if __name__ == "__main__":
    run()
