"""``careledger-audit``: verify records, receipts and the whole ledger from the chain alone.

Exit codes (every command): ``0`` valid / no discrepancy, ``1`` invalid / discrepancies found,
``2`` could not check (chain unreachable, missing or unreadable input, wrong deployment, input
over a limit or refused as not a regular file, out of memory). ``verify`` judges the receipt: a
change another account recorded of its leaf (under a root of its own) is listed as a discrepancy
but leaves the receipt valid (exit 0); ``audit --index`` counts it (``change_by_other_account``,
exit 1).

The chain is ``--rpc-url URL`` or ``--data-dir DIR`` (the embedded chain's directory, opened
read-only, so it can run beside the API). The contracts are ``--record-anchor``,
``--consent-registry`` and ``--from-block``, or read from ``DIR/deployment.json``.

Output: text for people goes to stderr, escaped (names come from the archives being audited);
``--output json`` writes the result, or why it could not check, as one JSON document on stdout.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from ledger.auditor.bulk import BulkReport, verify_receipts
from ledger.auditor.chain_reader import AuditTarget, ChainReader, open_reader
from ledger.auditor.html_report import render_html
from ledger.auditor.index_check import reconcile
from ledger.auditor.read_limits import DOCUMENT_LIMIT, RECEIPT_LIMIT, TOTAL_LIMIT, ReadLimits, read_regular_file
from ledger.auditor.replay import check_changes, compare_with_views, replay, view_checks
from ledger.auditor.report import AuditReport
from ledger.auditor.verify import ChainFacts, verify_one
from ledger.command_line import Output, OutputFormat, byte_count, emit_json, shown, version_option
from ledger.command_line import human as console
from ledger.exceptions import InputError, LedgerError
from ledger.records.hashing import digest_bytes, digest_json
from ledger.records.verification import Verification

EXIT_VALID, EXIT_INVALID, EXIT_UNCHECKED = 0, 1, 2

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


@app.callback()
def _main(version: Annotated[bool, version_option("careledger-audit")] = False) -> None:
    """Verify records, receipts and the whole ledger from the chain alone."""


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
MaxDocumentBytes = Annotated[
    int,
    typer.Option(
        "--max-document-bytes",
        parser=byte_count,
        metavar="SIZE",
        help="Most bytes of one document (65536, 64K, 64M, 1G...); a larger one is not read.",
    ),
]
MaxTotalBytes = Annotated[
    int,
    typer.Option(
        "--max-total-bytes",
        parser=byte_count,
        metavar="SIZE",
        help="Most bytes read from the folder or archive in all; past it the run stops (could not check).",
    ),
]


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
def _exit_codes(output: OutputFormat = OutputFormat.TEXT) -> Iterator[None]:
    """Map "could not check" errors to exit code 2, with the reason on stderr (and, for
    ``--output json``, as a JSON document on stdout)."""
    try:
        yield
    except LedgerError as err:
        _could_not_check(output, err.code, err.message, err)
    except MemoryError as err:
        _could_not_check(output, "out_of_memory", "ran out of memory; give smaller limits or more memory", err)
    except BrokenProcessPool as err:  # a worker was killed (the kernel's out-of-memory killer, or a signal)
        _could_not_check(output, "worker_died", f"a worker process died: {err}", err)
    except FileNotFoundError as err:
        _could_not_check(output, "not_found", str(err), err)
    except OSError as err:
        _could_not_check(output, "unreadable", str(err), err)


def _could_not_check(output: OutputFormat, code: str, message: str, err: BaseException) -> None:
    console.print(f"[bold]could not check[/bold] ({code}): {shown(message)}", soft_wrap=True)
    if output is OutputFormat.JSON:
        emit_json({"type": "careledger-audit-error", "verdict": "unchecked", "code": code, "message": message})
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


def _document_digest(document: Path | None, raw_file: Path | None, digest: str | None, limit: int) -> bytes | None:
    given = [x for x in (document, raw_file, digest) if x is not None]
    if len(given) > 1:
        raise InputError("give at most one of --document, --file and --digest")
    if document is not None:
        return digest_json(read_regular_file(document, limit, "the document"))
    if raw_file is not None:
        return digest_bytes(read_regular_file(raw_file, limit, "the document"))
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
        table.add_row(check.name, "[green]ok[/green]" if check.ok else "[red]FAILED[/red]", shown(check.detail))
    console.print(table)
    for check in outcome.failures:
        expected, actual = shown(check.expected or "-"), shown(check.actual or "-")
        console.print(
            f"{check.name}: expected {expected}\n{' ' * len(check.name)}  actual   {actual}",
            soft_wrap=True,
        )
    if outcome.amended_by:
        console.print(f"note: the record was later amended by leaf {shown(outcome.amended_by)}")
    if outcome.retraction_reason:
        console.print(f"note: the record was later retracted ({shown(outcome.retraction_reason)})")
    for line in outcome.foreign_changes:
        console.print(f"[bold yellow]discrepancy[/bold yellow]: {shown(line)}", soft_wrap=True)
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
    max_document_bytes: MaxDocumentBytes = DOCUMENT_LIMIT,
    output: Output = OutputFormat.TEXT,
    as_json: Annotated[bool, typer.Option("--json", hidden=True, help="The same as --output json.")] = False,
) -> None:
    """Verify one record and its receipt: digest, leaf, Merkle path, and the anchor on chain."""
    output = OutputFormat.JSON if as_json else output
    with _exit_codes(output):
        text = read_regular_file(receipt, RECEIPT_LIMIT, "the receipt")
        document_digest = _document_digest(document, raw_file, digest, max_document_bytes)
        with _chain(rpc_url, data_dir, record_anchor, consent_registry, from_block) as reader:
            outcome = verify_one(text, document_digest=document_digest, facts=ChainFacts(reader))
    _print_outcome(outcome)
    if output is OutputFormat.JSON:
        emit_json(
            {
                "type": "careledger-verification",
                "valid": outcome.valid,
                "failingStep": outcome.failing_step,
                "steps": [
                    {"step": c.name, "ok": c.ok, "detail": c.detail, "expected": c.expected, "actual": c.actual}
                    for c in outcome.checks
                ],
                "amendedBy": outcome.amended_by,
                "retractionReason": outcome.retraction_reason,
                "foreignChanges": outcome.foreign_changes,
            }
        )
    raise typer.Exit(EXIT_VALID if outcome.valid else EXIT_INVALID)


# --- verify-receipts -----------------------------------------------------------------------------


def _print_bulk(report: BulkReport) -> None:
    table = Table(
        "receipts",
        "valid",
        "invalid",
        "unchecked",
        "with documents",
        "batches (claims)",
        "chain reads",
        "seconds",
        "receipts/s",
    )
    table.add_row(
        f"{report.total:,}",
        f"{report.valid:,}",
        f"{len(report.failures):,}",
        f"{len(report.unchecked):,}",
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
            steps.add_row(step, f"{count:,}", shown(examples[step]))
        console.print(steps)
    if report.unchecked:
        refused = Table("could not check", "member refused", "why")
        for entry in sorted(report.unchecked, key=lambda u: u.file)[:20]:
            refused.add_row(shown(entry.file), shown(entry.member), shown(entry.reason))
        console.print(refused)
        if len(report.unchecked) > 20:
            console.print(f"... and {len(report.unchecked) - 20:,} more (all are in the JSON report)")


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
    max_document_bytes: MaxDocumentBytes = DOCUMENT_LIMIT,
    max_total_bytes: MaxTotalBytes = TOTAL_LIMIT,
    output: Output = OutputFormat.TEXT,
) -> None:
    """Verify every receipt of a folder or archive; each anchored root is read from the chain once.

    A receipt whose file (or document) is not a regular file or is over its limit is reported as
    unchecked; with no invalid receipt, any unchecked one makes the exit code 2.
    """
    limits = ReadLimits(RECEIPT_LIMIT, max_document_bytes, max_total_bytes)
    with (
        _exit_codes(output),
        _chain(rpc_url, data_dir, record_anchor, consent_registry, from_block) as reader,
        _progress() as progress,
    ):
        tasks: dict[str, Any] = {}

        def advance(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                label = "checking receipts" if phase == "local" else "checking anchors on chain"
                tasks[phase] = progress.add_task(label, total=total)
            progress.update(tasks[phase], completed=done)

        report = verify_receipts(source, ChainFacts(reader), workers=workers, progress=advance, limits=limits)
    _print_bulk(report)
    document = report.to_json()
    if report_path is not None:
        with _exit_codes(output):
            report_path.write_text(json.dumps(document, indent=1) + "\n", "utf-8")
        console.print(f"report: {shown(report_path)}")
    if output is OutputFormat.JSON:
        emit_json(document)
    raise typer.Exit(EXIT_INVALID if report.failures else EXIT_UNCHECKED if report.unchecked else EXIT_VALID)


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

    discrepancies = check_changes(history) + compare_with_views(reader, history, viewed)
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
            kinds.add_row(shown(kind), str(count), shown(example.subject))
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
    output: Output = OutputFormat.TEXT,
) -> None:
    """Replay every event from the deploy block; check state, leaf counts and (given) the index."""
    with (
        _exit_codes(output),
        _chain(rpc_url, data_dir, record_anchor, consent_registry, from_block) as reader,
        _progress() as progress,
    ):
        report = run_audit(reader, index, progress)
    _print_audit(report)
    document = report.to_json()
    with _exit_codes(output):
        if json_path is not None:
            json_path.write_text(json.dumps(document, indent=1) + "\n", "utf-8")
            console.print(f"JSON report: {shown(json_path)}")
        if html_path is not None:
            html_path.write_text(render_html(report), "utf-8")
            console.print(f"HTML report: {shown(html_path)}")
    if output is OutputFormat.JSON:
        emit_json(document)
    raise typer.Exit(EXIT_VALID if report.clean else EXIT_INVALID)


if __name__ == "__main__":  # pragma: no cover
    app()
