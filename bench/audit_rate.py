"""How fast the auditor verifies receipts and audits a growing ledger, against the naive way.

Builds a ledger on a fresh embedded chain with the library directly (bulk anchoring, 4,096 records
per batch, plus patient-sent consent grants, revocations and break-glass accesses), writes every
receipt to a folder, then measures, with the writer still open and the auditor reading the chain
READ-ONLY beside it:

* receipts verified per second by ``verify_receipts`` (files read, parsed, checked locally in
  worker processes, each root's anchor read once) at 10k and 100k receipts, against the naive way:
  ``Receipt.parse`` and ``verify_receipt`` with a chain call per receipt, on a sample, extrapolated;
  measured on the folder, and (its own row) on the same receipts in a zip archive (stored members;
  the archive is written before timing);
* ``careledger-audit audit`` time (replay every event, ask the view functions) at 10k and 100k
  records.

Targets: >= 100,000 receipts/s; a 100k-record audit in < 5 minutes. The machine has 2 noisy cores:
receipt rates are the best of 3 runs.

Run: ``.venv/bin/python bench/audit_rate.py [--records 10000,100000] [--consents 1000] [--receipts-only]``
(``--receipts-only`` skips the consent events and the audit timing).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import zipfile
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount
from rich.console import Console
from rich.table import Table

from ledger.auditor.bulk import verify_receipts
from ledger.auditor.chain_reader import open_reader
from ledger.auditor.cli import run_audit
from ledger.auditor.verify import ChainFacts
from ledger.config import Settings
from ledger.consent.terms import ConsentKey, GrantTerms
from ledger.records.hashing import digest_bytes, new_salt
from ledger.records.receipts import Receipt, anchor_batch, verify_receipt
from ledger.runtime import Ledger, open_ledger

BATCH = 4096
NAIVE_SAMPLE = 300
SCOPES = ("Observation", "Condition", "Procedure", "MedicationRequest", "Immunization")
console = Console()


def grow_records(ledger: Ledger, folder: Path, start: int, stop: int) -> None:
    """Anchor records ``start..stop`` in batches of 4,096 and write each receipt to ``folder``."""
    anchorer = ledger.anchorer()
    for first in range(start, stop, BATCH):
        count = min(BATCH, stop - first)
        records = [(new_salt(), digest_bytes(b"record %d" % (first + i))) for i in range(count)]
        for i, receipt in enumerate(anchor_batch(ledger.anchors, records, anchorer)):
            (folder / f"r{first + i:07d}.receipt.json").write_text(receipt.to_json())


def grow_consents(ledger: Ledger, patients: list[LocalAccount], count: int) -> None:
    """``count`` consent events: grants sent by patients, every tenth followed by a revocation,
    and a break-glass access per 100."""
    now = ledger.chain.block_timestamp("latest")
    emergency = ledger.anchorer("emergency-org")
    contract = ledger.consents.contract
    role = ledger.chain.call(contract.functions.EMERGENCY_ROLE())
    if not ledger.chain.call(contract.functions.hasRole(role, emergency.address)):
        ledger.chain.transact(contract.functions.grantRole(role, emergency.address), ledger.admin)
    sent = 0
    while sent < count:
        patient = patients[sent % len(patients)]
        grantee = Account.create().address
        key = ConsentKey(patient.address, grantee, SCOPES[sent % len(SCOPES)], "TREAT")
        ledger.consents.grant(GrantTerms(key, now - 3600, now + 86_400 * 30), patient)
        sent += 1
        if sent % 10 == 0:
            ledger.consents.revoke(key, patient)
            sent += 1
        if sent % 100 == 0:
            ledger.consents.record_emergency_access(emergency, patient.address, "*", "ETREAT", "UNCONSCIOUS")
            sent += 1


def write_zip(folder: Path, archive: Path) -> None:
    """The folder's receipts in a zip archive, stored (not compressed), in name order."""
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as out:
        for path in sorted(folder.iterdir()):
            out.write(path, f"receipts/{path.name}")


def receipts_rate(data_dir: Path, folder: Path, runs: int = 3) -> tuple[float, int]:
    """Best receipts/s of ``runs`` bulk verifications of ``folder`` (or archive), and the chain reads made."""
    best, reads = 0.0, 0
    for _ in range(runs):
        with open_reader(data_dir=data_dir) as reader:
            report = verify_receipts(folder, ChainFacts(reader))
        assert report.valid == report.total, report.to_json()["summary"]
        best, reads = max(best, report.rate), report.anchor_reads
    return best, reads


def naive_rate(ledger: Ledger, folder: Path) -> float:
    """The naive way: pydantic parse and ``verify_receipt`` with chain calls, per receipt."""
    files = sorted(folder.iterdir())[:NAIVE_SAMPLE]
    started = time.perf_counter()
    for path in files:
        assert verify_receipt(Receipt.parse(path.read_bytes()), anchors=ledger.anchors).valid
    return len(files) / (time.perf_counter() - started)


def audit_seconds(data_dir: Path) -> tuple[float, int, int]:
    """Seconds for a full audit (replay and view checks), the events replayed and the discrepancies."""
    started = time.perf_counter()
    with open_reader(data_dir=data_dir) as reader:
        report = run_audit(reader, None)
    return time.perf_counter() - started, sum(report.history.event_counts().values()), len(report.discrepancies)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", default="10000,100000", help="ledger sizes to measure, ascending")
    parser.add_argument("--consents", type=int, default=1000, help="consent events added per size")
    parser.add_argument(
        "--receipts-only", action="store_true", help="measure receipts/s only (no audit timing, no consent events)"
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.records.split(",")]
    rates = Table(
        "receipts",
        "source",
        "auditor receipts/s",
        "naive receipts/s (sample, extrapolated)",
        "ratio",
        "chain reads",
        "naive time for all",
        "target >= 100k/s",
        title="receipts verified per second (auditor: best of 3 runs; zip: stored members)",
    )
    audits = Table(
        "records",
        "consent events",
        "events replayed",
        "blocks",
        "audit seconds",
        "discrepancies",
        "target < 300 s at 100k",
    )
    with tempfile.TemporaryDirectory(prefix="careledger-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        folder = Path(tmp) / "receipts"
        folder.mkdir()
        settings = Settings(data_dir=data_dir, keystore_scrypt_n=2**4, chain_sync="NORMAL")
        with open_ledger(settings) as ledger:
            patients = [Account.create() for _ in range(20)]
            for patient in patients:
                ledger.chain.fund(patient.address, 10**20)
            built, consents = 0, 0
            for size in sizes:
                started = time.perf_counter()
                grow_records(ledger, folder, built, size)
                if not args.receipts_only:
                    grow_consents(ledger, patients, args.consents)
                    consents += args.consents
                built = size
                console.print(
                    f"built {size:,} records and {consents:,} consent events in {time.perf_counter() - started:.1f} s"
                )
                if not args.receipts_only:
                    seconds, events, discrepancies = audit_seconds(data_dir)
                    audits.add_row(
                        f"{size:,}",
                        f"{consents:,}",
                        f"{events:,}",
                        f"{ledger.chain.block_number():,}",
                        f"{seconds:.1f}",
                        str(discrepancies),
                        ("PASS" if seconds < 300 else "FAIL") if size >= 100_000 else "",
                    )
                rate, reads = receipts_rate(data_dir, folder)
                archive = Path(tmp) / f"receipts-{size}.zip"
                write_zip(folder, archive)
                zip_rate, zip_reads = receipts_rate(data_dir, archive)
                archive.unlink()
                naive = naive_rate(ledger, folder)
                for source, measured, chain_reads in (("folder", rate, reads), ("zip", zip_rate, zip_reads)):
                    rates.add_row(
                        f"{size:,}",
                        source,
                        f"{measured:,.0f}",
                        f"{naive:,.0f}",
                        f"{measured / naive:,.0f}x",
                        str(chain_reads),
                        f"{size / naive:,.0f} s",
                        "PASS" if measured >= 100_000 else "FAIL",
                    )
                audited = "" if args.receipts_only else f"audit {seconds:.1f} s, "
                console.print(
                    f"{size:,} records: {audited}{rate:,.0f} receipts/s from the folder, {zip_rate:,.0f}/s "
                    f"from a zip (naive {naive:,.0f}/s)"
                )
    console.print(rates)
    if not args.receipts_only:
        console.print(audits)
    load = os.getloadavg()[0]
    console.print(
        f"load average at the end: {load:.1f} on {os.cpu_count()} CPUs (other work on the machine "
        "slows every figure above)"
    )


if __name__ == "__main__":
    main()
