"""``careledger-audit``: verify records, receipts and the whole ledger from the chain alone.

Exit codes (every command): ``0`` valid / no discrepancy, ``1`` invalid / discrepancies found,
``2`` could not check (chain unreachable, missing or unreadable input, wrong deployment).

The chain is ``--rpc-url URL`` or ``--data-dir DIR`` (the embedded chain's directory, opened
read-only, so it can run beside the API). The contracts are ``--record-anchor``,
``--consent-registry`` and ``--from-block``, or read from ``DIR/deployment.json``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from ledger.auditor.bulk import BulkReport, verify_receipts
from ledger.auditor.chain_reader import AuditTarget, ChainReader, open_reader
from ledger.auditor.html_report import render_html
from ledger.auditor.index_check import reconcile
from ledger.auditor.replay import compare_with_views, replay, view_checks
from ledger.auditor.report import AuditReport
from ledger.auditor.verify import ChainFacts, verify_one
from ledger.exceptions import InputError, LedgerError
from ledger.records.hashing import digest_bytes, digest_json
from ledger.records.verification import Verification

EXIT_VALID, EXIT_INVALID, EXIT_UNCHECKED = 0, 1, 2

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
console = Console(stderr=False, highlight=False)

RpcUrl = Annotated[str | None, typer.Option("--rpc-url", help="JSON-RPC node to read the chain from.")]
DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="The embedded chain's data directory (opened read-only); deployment.json is read from it too.",
    ),
]
RecordAnchor = Annotated[str | None, typer.Option("--record-anchor", help="RecordAnchor address.")]
ConsentRegistry = Annotated[str | None, typer.Option("--consent-registry", help="ConsentRegistry address.")]
FromBlock = Annotated[int, typer.Option("--from-block", min=0, help="The deploy block (history starts there).")]


def _target(record_anchor: str | None, consent_registry: str | None, from_block: int) -> AuditTarget | None:
    if record_anchor is None and consent_registry is None:
        return None
    if record_anchor is None or consent_registry is None:
        raise InputError("give both --record-anchor and --consent-registry (or neither, with --data-dir)")
    return AuditTarget(record_anchor, consent_registry, from_block)


@contextmanager
def _chain(
    rpc_url: str | None, data_dir: Path | None, record_anchor: str | None, consent_registry: str | None, from_block: int
) -> Iterator[ChainReader]:
    reader = open_reader(
        rpc_url=rpc_url, data_dir=data_dir, target=_target(record_anchor, consent_registry, from_block)
    )
    try:
        yield reader
    finally:
        reader.close()


@contextmanager
def _exit_codes() -> Iterator[None]:
    """Map "could not check" errors to exit code 2, with the reason on the console."""
    try:
        yield
    except LedgerError as err:
        console.print(f"[bold]could not check[/bold] ({err.code}): {err.message}")
        raise typer.Exit(EXIT_UNCHECKED) from err
    except OSError as err:
        console.print(f"[bold]could not check[/bold]: {err}")
        raise typer.Exit(EXIT_UNCHECKED) from err


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


# --- verify --------------------------------------------------------------------------------------


def _document_digest(document: Path | None, raw_file: Path | None, digest: str | None) -> bytes | None:
    given = [x for x in (document, raw_file, digest) if x is not None]
    if len(given) > 1:
        raise InputError("give at most one of --document, --file and --digest")
    if document is not None:
        return digest_json(document.read_bytes())
    if raw_file is not None:
        return digest_bytes(raw_file.read_bytes())
    if digest is not None:
        text = digest.removeprefix("0x")
        try:
            value = bytes.fromhex(text)
        except ValueError:
            value = b""
        if len(value) != 32 or len(text) != 64:
            raise InputError("--digest must be 0x followed by 64 hex digits")
        return value
    return None


def _print_outcome(outcome: Verification) -> None:
    table = Table("step", "result", "what was checked")
    for check in outcome.checks:
        table.add_row(check.name, "[green]ok[/green]" if check.ok else "[red]FAILED[/red]", check.detail)
    console.print(table)
    for check in outcome.failures:
        console.print(
            f"{check.name}: expected {check.expected or '-'}\n{' ' * len(check.name)}  actual   {check.actual or '-'}",
            soft_wrap=True,
        )
    if outcome.amended_by:
        console.print(f"note: the record was later amended by leaf {outcome.amended_by}")
    if outcome.retraction_reason:
        console.print(f"note: the record was later retracted ({outcome.retraction_reason})")
    if outcome.valid:
        console.print("[bold green]VALID[/bold green]")
    else:
        console.print(f"[bold red]INVALID[/bold red]: step [bold]{outcome.failing_step}[/bold] failed")


@app.command()
def verify(
    receipt: Annotated[Path, typer.Option("--receipt", help="The record's receipt (JSON).")],
    document: Annotated[
        Path | None, typer.Option("--document", help="The record as JSON/FHIR (hashed in RFC 8785 canonical form).")
    ] = None,
    raw_file: Annotated[Path | None, typer.Option("--file", help="The record as raw bytes (a PDF...).")] = None,
    digest: Annotated[str | None, typer.Option("--digest", help="The record's SHA-256 digest, 0x-hex.")] = None,
    rpc_url: RpcUrl = None,
    data_dir: DataDir = None,
    record_anchor: RecordAnchor = None,
    consent_registry: ConsentRegistry = None,
    from_block: FromBlock = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the steps as JSON instead of a table.")] = False,
) -> None:
    """Verify one record and its receipt: digest, leaf, Merkle path, and the anchor on chain."""
    with _exit_codes():
        text = receipt.read_bytes()
        document_digest = _document_digest(document, raw_file, digest)
        with _chain(rpc_url, data_dir, record_anchor, consent_registry, from_block) as reader:
            outcome = verify_one(text, document_digest=document_digest, facts=ChainFacts(reader))
    if as_json:
        console.print_json(
            json.dumps(
                {
                    "valid": outcome.valid,
                    "failingStep": outcome.failing_step,
                    "steps": [
                        {"step": c.name, "ok": c.ok, "detail": c.detail, "expected": c.expected, "actual": c.actual}
                        for c in outcome.checks
                    ],
                    "amendedBy": outcome.amended_by,
                    "retractionReason": outcome.retraction_reason,
                }
            )
        )
    else:
        _print_outcome(outcome)
    raise typer.Exit(EXIT_VALID if outcome.valid else EXIT_INVALID)


# --- verify-receipts -----------------------------------------------------------------------------


def _print_bulk(report: BulkReport) -> None:
    table = Table(
        "receipts", "valid", "invalid", "with documents", "batches (claims)", "chain reads", "seconds", "receipts/s"
    )
    table.add_row(
        f"{report.total:,}",
        f"{report.valid:,}",
        f"{len(report.failures):,}",
        f"{report.with_documents:,}",
        f"{report.claims:,}",
        f"{report.anchor_reads:,}",
        f"{report.seconds:.2f}",
        f"{report.rate:,.0f}",
    )
    console.print(table)
    if report.failures:
        steps = Table("failing step", "receipts", "example")
        examples: dict[str, str] = {}
        for name, failure in report.failures:
            examples.setdefault(failure.step, name)
        for step, count in sorted(report.by_step().items()):
            steps.add_row(step, f"{count:,}", examples[step])
        console.print(steps)


@app.command("verify-receipts")
def verify_receipts_command(
    source: Annotated[
        Path,
        typer.Argument(
            help="A folder, .zip, .tar.gz or .tgz of NAME.receipt.json files, "
            "each optionally beside its document NAME.json (JSON/FHIR) or NAME.bin."
        ),
    ],
    report_path: Annotated[Path | None, typer.Option("--report", help="Write the JSON report here.")] = None,
    workers: Annotated[int | None, typer.Option("--workers", min=1, help="Processes (default: CPUs).")] = None,
    rpc_url: RpcUrl = None,
    data_dir: DataDir = None,
    record_anchor: RecordAnchor = None,
    consent_registry: ConsentRegistry = None,
    from_block: FromBlock = 0,
) -> None:
    """Verify every receipt of a folder or archive; each anchored root is read from the chain once."""
    with (
        _exit_codes(),
        _chain(rpc_url, data_dir, record_anchor, consent_registry, from_block) as reader,
        _progress() as progress,
    ):
        tasks: dict[str, Any] = {}

        def advance(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                label = "checking receipts" if phase == "local" else "checking anchors on chain"
                tasks[phase] = progress.add_task(label, total=total)
            progress.update(tasks[phase], completed=done)

        report = verify_receipts(source, ChainFacts(reader), workers=workers, progress=advance)
    _print_bulk(report)
    if report_path is not None:
        with _exit_codes():
            report_path.write_text(json.dumps(report.to_json(), indent=1) + "\n", "utf-8")
        console.print(f"report: {report_path}")
    raise typer.Exit(EXIT_VALID if not report.failures else EXIT_INVALID)


# --- audit ---------------------------------------------------------------------------------------


def run_audit(reader: ChainReader, index: Path | None, progress: Progress | None = None) -> AuditReport:
    """Replay the chain, compare it with the view functions and (given) the index; the report."""
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    reading = (
        progress.add_task("reading events (blocks)", total=reader.head - reader.target.from_block + 1)
        if progress
        else None
    )

    def read(blocks: int) -> None:
        if progress is not None and reading is not None:
            progress.advance(reading, blocks)

    history = replay(reader, progress=read)
    seconds["replay"] = time.perf_counter() - started
    started = time.perf_counter()
    viewing = progress.add_task("asking view functions", total=view_checks(history)) if progress else None

    def viewed(count: int) -> None:
        if progress is not None and viewing is not None:
            progress.advance(viewing, count)

    discrepancies = compare_with_views(reader, history, viewed)
    seconds["views"] = time.perf_counter() - started
    summary = None
    if index is not None:
        started = time.perf_counter()
        found, summary = reconcile(index, history, reader.head)
        discrepancies.extend(found)
        seconds["index"] = time.perf_counter() - started
    return AuditReport(
        reader.target,
        reader.chain_id,
        reader.head,
        reader.source.block_time(reader.head),
        history,
        discrepancies,
        summary,
        seconds,
    )


def _print_audit(report: AuditReport) -> None:
    data = report.to_json()
    table = Table(
        "events", "roots", "records anchored", "consents", "break-glass", "amendments", "retractions", "discrepancies"
    )
    table.add_row(
        f"{sum(data['events'].values()):,}",
        f"{data['anchoring']['roots']:,}",
        f"{data['anchoring']['records']:,}",
        f"{data['consents']['keys']:,}",
        str(len(data["breakGlass"])),
        str(len(data["amendments"])),
        str(len(data["retractions"])),
        str(len(report.discrepancies)),
    )
    console.print(table)
    if report.discrepancies:
        kinds = Table("discrepancy", "count", "example")
        for kind, count in report.discrepancy_counts().items():
            example = next(d for d in report.discrepancies if d.kind == kind)
            kinds.add_row(kind, str(count), example.subject)
        console.print(kinds)
        console.print(f"[bold red]{len(report.discrepancies)} discrepancies[/bold red]")
    else:
        console.print("[bold green]no discrepancies[/bold green]")


@app.command()
def audit(
    index: Annotated[
        Path | None, typer.Option("--index", help="A copy of the API's ledger.sqlite3 to reconcile (opened read-only).")
    ] = None,
    html_path: Annotated[Path | None, typer.Option("--html", help="Write the HTML report here.")] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the JSON report here.")] = None,
    rpc_url: RpcUrl = None,
    data_dir: DataDir = None,
    record_anchor: RecordAnchor = None,
    consent_registry: ConsentRegistry = None,
    from_block: FromBlock = 0,
) -> None:
    """Replay every event from the deploy block; check state, leaf counts and (given) the index."""
    with (
        _exit_codes(),
        _chain(rpc_url, data_dir, record_anchor, consent_registry, from_block) as reader,
        _progress() as progress,
    ):
        report = run_audit(reader, index, progress)
    _print_audit(report)
    with _exit_codes():
        if json_path is not None:
            json_path.write_text(json.dumps(report.to_json(), indent=1) + "\n", "utf-8")
            console.print(f"JSON report: {json_path}")
        if html_path is not None:
            html_path.write_text(render_html(report), "utf-8")
            console.print(f"HTML report: {html_path}")
    raise typer.Exit(EXIT_VALID if report.clean else EXIT_INVALID)


if __name__ == "__main__":  # pragma: no cover
    app()
