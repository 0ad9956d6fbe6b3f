#!/usr/bin/env python3
"""Gas used by anchoring and consent on the embedded chain (gas figures are exact, not timings).

Prints anchoring cost per batch and per record for batches of 1, 256 and 4096 records beside a
real one-transaction-per-record design measured on the same chain: ``contracts/test/NaiveRecordLog.sol``
(one event per record, no storage, no role check: a lower bound for a naive anchor), one
transaction per record, gasUsed summed. Sizes above ``--naive-max`` send ``--naive-max``
transactions and scale their measured mean (marked so). Also the cost of recording an amendment,
a retraction and a break-glass access, and of each consent operation, with the targets from the
foundation issue marked PASS/FAIL.

    .venv/bin/python bench/gas.py [--naive-max 256]   (--naive-max 4096 measures every naive row)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from eth_account import Account
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ledger.chain.contracts import Artifact
from ledger.config import Settings
from ledger.consent.terms import ConsentKey, ConsentSet, GrantTerms
from ledger.consent.typed_data import (
    grant_set_typed_data,
    grant_typed_data,
    guardian_typed_data,
    revocation_set_typed_data,
    revocation_typed_data,
    sign_typed_data,
)
from ledger.records.anchoring import RecordAnchorClient, RecordInBatch
from ledger.records.hashing import commitment, digest_bytes, new_salt
from ledger.records.merkle import MerkleTree
from ledger.runtime import Ledger, open_ledger

BATCH_SIZES = (1, 256, 4096)
TARGET_GAS_PER_RECORD_AT_4096 = 15
TARGET_RELAYED_GRANT = 100_000
NAIVE_ARTIFACT = Path(__file__).resolve().parents[1] / "tests" / "artifacts" / "NaiveRecordLog.json"


def anchor_gas(anchors: RecordAnchorClient, size: int, ledger: Ledger) -> int:
    tree = MerkleTree.from_records([(new_salt(), digest_bytes(b"%d" % i)) for i in range(size)])
    return anchors.anchor(tree.root, tree.leaf_count, ledger.anchorer()).gas_used


def anchored_record(ledger: Ledger, size: int, tag: bytes) -> RecordInBatch:
    """One record of a freshly anchored batch of ``size`` records, with its proof."""
    records = [(new_salt(), digest_bytes(tag + b"%d" % i)) for i in range(size)]
    tree = MerkleTree.from_records(records)
    ledger.anchors.anchor(tree.root, tree.leaf_count, ledger.anchorer())
    salt, digest = records[0]
    return RecordInBatch(tree.root, commitment(salt, digest), tuple(tree.proof(tree.leaves[0])))


def change_gas(ledger: Ledger) -> dict[str, int]:
    """Amending and retracting a record of a 4,096-record batch (12 proof nodes each), and a break-glass access."""
    anchors, chain, org = ledger.anchors, ledger.chain, ledger.anchorer()
    size = BATCH_SIZES[-1]
    original, correction, retracted = (anchored_record(ledger, size, tag) for tag in (b"v1/", b"v2/", b"r/"))
    figures = {
        f"amend (records of {size:,}-record batches)": chain.transaction_receipt(
            anchors.amend(original, correction, org)
        )["gasUsed"],
        f"retract (a record of a {size:,}-record batch)": chain.transaction_receipt(
            anchors.retract(retracted, "ENTERED_IN_ERROR", org)
        )["gasUsed"],
    }
    emergency = ledger.anchorer("emergency-org")
    ledger.consents.grant_emergency(ledger.admin, emergency.address)
    patient = Account.create()
    figures["break-glass access (recordEmergencyAccess)"] = ledger.consents.record_emergency_access(
        emergency, patient.address, "*", "ETREAT", "UNCONSCIOUS"
    )["gasUsed"]
    return figures


def naive_gas(ledger: Ledger, count: int) -> int:
    """Total gasUsed of ``count`` NaiveRecordLog transactions, one random leaf each, from one anchorer."""
    data = json.loads(NAIVE_ARTIFACT.read_text("utf-8"))
    artifact = Artifact(
        name=data["contractName"],
        abi=data["abi"],
        bytecode=data["bytecode"],
        deployed_bytecode=data["deployedBytecode"],
        metadata=data["metadata"],
    )
    sender = ledger.anchorer()
    address = str(ledger.chain.deploy(artifact, sender)["contractAddress"])
    contract = ledger.chain.contract(artifact, address)
    return sum(
        int(ledger.chain.transact(contract.functions.logRecord(os.urandom(32)), sender)["gasUsed"])
        for _ in range(count)
    )


def naive_cell(ledger: Ledger, size: int, naive_max: int, measured: dict[int, int]) -> tuple[int, str]:
    """Naive gas for ``size`` records: measured for ``size <= naive_max``, else the measured mean scaled."""
    count = min(size, naive_max)
    if count not in measured:
        measured[count] = naive_gas(ledger, count)
    if count == size:
        return measured[count], f"{measured[count]:,} ({size:,} tx{'s' if size > 1 else ''})"
    scaled = round(measured[count] / count * size)
    return scaled, f"{scaled:,} (mean of {count:,} txs x {size:,})"


def consent_gas(ledger: Ledger) -> dict[str, int]:
    consents, chain = ledger.consents, ledger.chain
    org = ledger.anchorer()
    now = int(time.time())
    figures: dict[str, int] = {}

    direct_patient = Account.create()
    chain.fund(direct_patient.address, 10**18)
    key = ConsentKey(direct_patient.address, org.address, "Observation", "TREAT")
    terms = GrantTerms(key, now - 1, now + 86_400)
    figures["grant, sent by the patient"] = consents.grant(terms, direct_patient)["gasUsed"]
    figures["revoke, sent by the patient"] = consents.revoke(terms.key, direct_patient)["gasUsed"]

    patient = Account.create()  # holds no ether: everything goes through the relayer
    for label in ("grant, relayed (patient's first signature)", "grant, relayed (later signature)"):
        scope = "Observation" if "first" in label else "Condition"
        terms = GrantTerms(ConsentKey(patient.address, org.address, scope, "TREAT"), now - 1, now + 86_400)
        nonce, deadline = consents.nonce(patient.address), now + 3_600
        signature = sign_typed_data(patient, grant_typed_data(consents.domain, terms, patient.address, nonce, deadline))
        receipt = consents.grant_by_signature(terms, patient.address, deadline, signature, ledger.relayer)
        figures[label] = receipt["gasUsed"]
    nonce, deadline = consents.nonce(patient.address), now + 3_600
    typed = revocation_typed_data(consents.domain, terms.key, patient.address, nonce, deadline)
    figures["revoke, relayed"] = consents.revoke_by_signature(
        terms.key, patient.address, deadline, sign_typed_data(patient, typed), ledger.relayer
    )["gasUsed"]
    guardian = Account.create()
    nonce = consents.nonce(patient.address)
    typed = guardian_typed_data(consents.domain, patient.address, guardian.address, now + 86_400, nonce, deadline)
    figures["appoint guardian, relayed"] = consents.set_guardian_by_signature(
        patient.address, guardian.address, now + 86_400, deadline, sign_typed_data(patient, typed), ledger.relayer
    )["gasUsed"]
    figures.update(consent_document_gas(ledger, org.address, now))
    fn = consents.contract.functions.isPermitted(
        patient.address, org.address, b"Observation".ljust(32, b"\0"), b"TREAT".ljust(32, b"\0")
    )
    figures["isPermitted (call, incl. 21k base)"] = fn.estimate_gas()
    return figures


def consent_document_gas(ledger: Ledger, grantee: str, now: int) -> dict[str, int]:
    """A FHIR Consent granted whole (``grantSetBySig``): one key, and treatment, payment and operations
    (three keys) as IHE PCF's basic consent has them; and its withdrawal."""
    consents, figures = ledger.consents, {}
    for label, purposes in (
        ("grant, relayed FHIR Consent, 1 key (patient's first signature)", ("TREAT",)),
        (
            "grant, relayed FHIR Consent, 3 keys: TREAT, HPAYMT, HOPERAT (first signature)",
            ("TREAT", "HPAYMT", "HOPERAT"),
        ),
    ):
        patient = Account.create()
        consent = ConsentSet(patient.address, grantee, ("*",), purposes, now - 1, now + 86_400, os.urandom(32))
        nonce, deadline = consents.nonce(patient.address), now + 3_600
        typed = grant_set_typed_data(consents.domain, consent, patient.address, nonce, deadline)
        receipt = consents.grant_set_by_signature(
            consent, patient.address, deadline, sign_typed_data(patient, typed), ledger.relayer
        )
        figures[label] = receipt["gasUsed"]
    nonce = consents.nonce(patient.address)
    typed = revocation_set_typed_data(consents.domain, consent, patient.address, nonce, deadline)
    figures["withdraw, relayed FHIR Consent, 3 keys"] = consents.revoke_set_by_signature(
        consent, patient.address, deadline, sign_typed_data(patient, typed), ledger.relayer
    )["gasUsed"]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--naive-max", type=int, default=256, help="most naive transactions sent for one row")
    args = parser.parse_args()
    console = Console(width=max(Console().width, 120))  # wide tables: do not wrap cells when piped
    with (
        tempfile.TemporaryDirectory() as tmp,
        open_ledger(Settings(data_dir=Path(tmp), keystore_scrypt_n=2**4)) as ledger,
    ):
        per_batch = {size: anchor_gas(ledger.anchors, size, ledger) for size in BATCH_SIZES}
        measured: dict[int, int] = {}
        table = Table(title="Anchoring gas: one Merkle root per batch vs one transaction per record (measured)")
        for column in ("records", "gas per batch", "gas per record", "naive gas (NaiveRecordLog, 1 tx/record)"):
            table.add_column(column, justify="right")
        table.add_column("naive / batched", justify="right")
        for size, gas in per_batch.items():
            naive, cell = naive_cell(ledger, size, args.naive_max, measured)
            table.add_row(f"{size:,}", f"{gas:,}", f"{gas / size:,.1f}", cell, f"{naive / gas:,.1f}x")
        console.print(table)
        console.print(
            "naive: contracts/test/NaiveRecordLog.sol, an event per record and no storage or role check, each "
            "record its own transaction (21,000 base included), gasUsed summed; batched: RecordAnchor.anchor of "
            "the batch's Merkle root (storage of the root, role check, event)."
        )
        at_4096 = per_batch[4096] / 4096
        console.print(
            f"target: <= {TARGET_GAS_PER_RECORD_AT_4096} gas/record at 4096: {at_4096:.2f} "
            f"-> {'PASS' if at_4096 <= TARGET_GAS_PER_RECORD_AT_4096 else 'FAIL'}"
        )

        table = Table(title="Record changes and break-glass (gasUsed, incl. the 21,000 base of a transaction)")
        table.add_column("operation")
        table.add_column("gas", justify="right")
        for label, gas in change_gas(ledger).items():
            table.add_row(label, f"{gas:,}")
        console.print(table)

        figures = consent_gas(ledger)
        table = Table(title="Consent gas (gasUsed, incl. the 21,000 base of a transaction)")
        table.add_column("operation")
        table.add_column("gas", justify="right")
        for label, gas in figures.items():
            table.add_row(label, f"{gas:,}")
        console.print(table)
        relayed = max(v for k, v in figures.items() if k.startswith("grant, relayed") and "3 keys" not in k)
        console.print(
            f"target: relayed grant < {TARGET_RELAYED_GRANT:,} gas: worst {relayed:,} "
            f"-> {'PASS' if relayed < TARGET_RELAYED_GRANT else 'FAIL'}"
        )


if __name__ == "__main__":
    main()
