"""How fast the auditor verifies receipts and audits a growing ledger, against the naive way in the same run.

Builds a ledger on a fresh embedded chain with the library directly (bulk anchoring, 4,096 records
per batch, plus patient-sent consent grants, revocations and break-glass accesses), writes every
receipt to a folder, then measures, with the writer still open and the auditor reading the chain
READ-ONLY beside it:

* receipts verified per second by ``verify_receipts``, timed from outside it: from opening the
  source (the folder walk, the zip's central directory, the tar's members) to the last verdict, on
  the folder, a stored zip and a tar.gz of the same receipts (archives written before timing). The
  time is split into opening and listing the source, the local phase (workers) and what remains of
  the chain phase, which names what limits the rate;
* the naive way, doing the same work in the same run: list the folder, then per receipt read the
  file and ``verify_one`` it (the auditor's own steps, parse to ``anchorer_role``) with its own
  ``ChainFacts`` (so the anchor, its event and the role history are read for every receipt) and
  the amendment and retraction status; on a sample, extrapolated to all receipts;
* ``careledger-audit audit`` time (replay every event, ask the view functions).

Targets: >= 100,000 receipts/s end to end at 100k receipts (a quiet machine; the report names what
limits it otherwise); a 100k-record audit in < 5 minutes. Receipt rates are the best of 3 runs.

Run: ``.venv/bin/python bench/audit_rate.py [--records 10000,100000] [--consents 1000] [--receipts-only]``
(``--receipts-only`` skips the consent events and the audit timing).
"""

from __future__ import annotations

import argparse
import os
import tarfile
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount
from rich.console import Console
from rich.table import Table

from ledger.auditor.bulk import verify_receipts
from ledger.auditor.chain_reader import ChainReader, open_reader
from ledger.auditor.cli import run_audit
from ledger.auditor.verify import ChainFacts, verify_one
from ledger.config import Settings
from ledger.consent.terms import ConsentKey, GrantTerms
from ledger.records.hashing import digest_bytes, new_salt
from ledger.records.receipts import anchor_batch
from ledger.runtime import Ledger, open_ledger

BATCH = 4096
NAIVE_SAMPLE = 300
NAIVE_SECONDS = 5.0  # the naive sample stops after this long (at least 20 receipts)
SCOPES = ("Observation", "Condition", "Procedure", "MedicationRequest", "Immunization")
console = Console(width=max(Console().width, 170))  # wide tables: do not wrap cells when piped


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


def write_tar(folder: Path, archive: Path) -> None:
    """The folder's receipts in a gzip-compressed tar archive, in name order."""
    with tarfile.open(archive, "w:gz", compresslevel=1) as out:
        for path in sorted(folder.iterdir()):
            out.add(path, f"receipts/{path.name}")


@dataclass(frozen=True)
class Run:
    """One bulk verification timed from outside: the whole call, and how it splits."""

    receipts: int
    seconds: float
    local_s: float
    chain_s: float
    chain_reads: int

    @property
    def rate(self) -> float:
        return self.receipts / self.seconds

    @property
    def open_s(self) -> float:
        """Opening and listing the source: what the call spent before its local phase began."""
        return self.seconds - self.local_s - self.chain_s


def receipts_run(data_dir: Path, source: Path, runs: int = 3) -> Run:
    """The fastest of ``runs`` bulk verifications of ``source``, from opening it to the last verdict."""
    best: Run | None = None
    for _ in range(runs):
        with open_reader(data_dir=data_dir) as reader:
            started = time.perf_counter()
            report = verify_receipts(source, ChainFacts(reader))
            seconds = time.perf_counter() - started
        assert report.valid == report.total, report.to_json()["summary"]
        run = Run(report.total, seconds, report.seconds_local, report.seconds_chain, report.anchor_reads)
        best = run if best is None or run.seconds < best.seconds else best
    assert best is not None
    return best


def naive_rate(reader: ChainReader, folder: Path, total: int) -> float:
    """The naive way, the same checks: list the folder, then per receipt read, parse and verify it
    with chain reads of its own (anchor, event, role history, amendment and retraction status)."""
    started = time.perf_counter()
    names = sorted(os.listdir(folder))
    listing = time.perf_counter() - started
    started = time.perf_counter()
    done = 0
    for name in names[:NAIVE_SAMPLE]:
        outcome = verify_one((folder / name).read_bytes(), facts=ChainFacts(reader))
        assert outcome.valid, outcome.checks
        done += 1
        if done >= 20 and time.perf_counter() - started > NAIVE_SECONDS:
            break
    per_receipt = (time.perf_counter() - started) / done
    return total / (listing + per_receipt * total)


def measure_receipts(data_dir: Path, folder: Path, tmp: Path, size: int, rates: Table) -> None:
    """Rows for ``size`` receipts: the folder, a zip and a tar.gz, beside the naive way."""
    sources = [("folder", folder)]
    for kind, write in (("zip", write_zip), ("tar.gz", write_tar)):
        archive = tmp / f"receipts-{size}.{kind}"
        write(folder, archive)
        sources.append((kind, archive))
    runs = [(kind, receipts_run(data_dir, source)) for kind, source in sources]
    for _, source in sources[1:]:
        source.unlink()
    with open_reader(data_dir=data_dir) as reader:
        naive = naive_rate(reader, folder, size)
    for kind, run in runs:
        rates.add_row(
            f"{size:,}",
            kind,
            f"{run.rate:,.0f}",
            f"{run.open_s:.2f} s",
            f"{run.local_s:.2f} s",
            f"{run.chain_s:.2f} s",
            f"{naive:,.1f}",
            f"{run.rate / naive:,.0f}x",
            str(run.chain_reads),
            f"{size / naive:,.0f} s",
            "PASS" if run.rate >= 100_000 else "FAIL",
        )
    console.print(
        f"{size:,} receipts: "
        + ", ".join(f"{run.rate:,.0f}/s from the {kind}" for kind, run in runs)
        + f" (naive {naive:,.1f}/s)"
    )


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
        "open + list",
        "local phase",
        "chain after",
        "naive receipts/s (same checks)",
        "ratio",
        "chain reads",
        "naive time for all",
        "target >= 100k/s",
        title="receipts verified per second, from opening the source to the last verdict (best of 3; same run)",
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
                measure_receipts(data_dir, folder, Path(tmp), size, rates)
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
