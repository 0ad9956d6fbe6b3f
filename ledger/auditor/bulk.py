"""Verify a folder or archive of receipts (hundreds of thousands), in parallel, chain facts read once.

Layout (the same inside a ``.zip`` or ``.tar.gz``/``.tgz``; sub-folders are allowed):

* every file named ``<name>.receipt.json`` is a receipt;
* ``<name>.json`` beside it, if present, is its document as JSON/FHIR (hashed in RFC 8785
  canonical form), else ``<name>.bin``, if present, is its document as raw bytes. Without either,
  only the receipt is checked (its digest cannot be compared with anything).

Work is split in two phases. The local phase (parse, digest, leaf, proof) runs over chunks of
files in worker processes (forked, the task list inherited); receipts that pass are grouped by
their chain claim (root, block, anchorer, ...), which a whole batch shares. The chain phase then
checks each distinct claim once (:class:`~ledger.auditor.verify.ChainFacts`) and fails every
receipt of a claim that fails.
A tarball is unpacked into a temporary directory first (``tarfile``'s ``data`` filter: no links
out, no absolute paths); a zip is read member by member by each worker.
"""

from __future__ import annotations

import multiprocessing
import os
import tarfile
import tempfile
import threading
import time
import zipfile
from array import array
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ledger.auditor.receipt_format import Failure, LocalVerifier, ParsedReceipt, ReceiptClaim, parse_receipt
from ledger.auditor.verify import ChainFacts
from ledger.exceptions import InputError, InvalidProofError, LedgerError, NotFoundError
from ledger.hashing import digest_bytes, digest_json

RECEIPT_SUFFIX = ".receipt.json"
JSON_DOCUMENT_SUFFIX = ".json"
RAW_DOCUMENT_SUFFIX = ".bin"
CHUNK_SIZE = 2_000
MIN_CHUNK_SIZE = 250
MEMO_LIMIT = 16_384
"""Proof memo entries per worker: a few batches' trees. Small, so that emptied memory is reused
(fresh pages cost a fault each); a batch larger than this only re-hashes a few upper nodes."""
IN_PROCESS_BELOW = 5_000
"""Fewer receipts than this are checked in the calling process (starting workers costs more)."""

Task = tuple[str, str | None]
"""A receipt's name and its document's name (or None)."""


@dataclass(frozen=True)
class SourceSpec:
    """Where receipts are read from, picklable for workers: a folder or a zip file."""

    kind: str
    path: str


@dataclass
class ChunkResult:
    """The local phase's outcome for one chunk, compact to send back from a worker.

    ``passed`` holds, per chain claim, the positions (in the run's task list) of the receipts that
    passed the local steps; names are looked up only for a claim that fails on chain.
    """

    passed: dict[ReceiptClaim, array[int]] = field(default_factory=dict)
    failures: list[tuple[str, Failure]] = field(default_factory=list)
    count: int = 0


@dataclass
class BulkReport:
    """The outcome of a bulk verification."""

    source: str
    total: int = 0
    valid: int = 0
    failures: list[tuple[str, Failure]] = field(default_factory=list)
    claims: int = 0
    anchor_reads: int = 0
    with_documents: int = 0
    seconds_local: float = 0.0
    seconds_chain: float = 0.0

    @property
    def seconds(self) -> float:
        return self.seconds_local + self.seconds_chain

    @property
    def rate(self) -> float:
        """Receipts verified per second, end to end (reading, parsing, local and chain steps)."""
        return self.total / self.seconds if self.seconds else 0.0

    def by_step(self) -> Counter[str]:
        return Counter(f.step for _, f in self.failures)

    def to_json(self) -> dict[str, Any]:
        """The machine-readable report: a summary and every failure with its step and values."""
        return {
            "type": "careledger-receipts-report",
            "version": 1,
            "source": self.source,
            "summary": {
                "receipts": self.total, "valid": self.valid, "invalid": len(self.failures),
                "withDocuments": self.with_documents, "distinctClaims": self.claims,
                "anchorReads": self.anchor_reads, "failuresByStep": dict(sorted(self.by_step().items())),
                "seconds": round(self.seconds, 3), "receiptsPerSecond": round(self.rate),
            },
            "failures": [{"file": name, "step": f.step, "detail": f.detail, "expected": f.expected,
                          "actual": f.actual} for name, f in sorted(self.failures, key=lambda nf: nf[0])],
        }


# --- discovering receipts ------------------------------------------------------------------------


def _pair(names: list[str]) -> list[Task]:
    """Receipts in name order, each with its document's name if one lies beside it."""
    receipts = sorted(n for n in names if n.endswith(RECEIPT_SUFFIX))
    others = {n for n in names if not n.endswith(RECEIPT_SUFFIX)}
    if not others:
        return [(name, None) for name in receipts]
    cut = len(RECEIPT_SUFFIX)
    tasks: list[Task] = []
    for name in receipts:
        stem = name[:-cut]
        document = stem + JSON_DOCUMENT_SUFFIX
        if document not in others:
            document = stem + RAW_DOCUMENT_SUFFIX
        tasks.append((name, document if document in others else None))
    return tasks


def _folder_names(root: Path) -> list[str]:
    names: list[str] = []
    for directory, _, files in os.walk(root):
        prefix = os.path.relpath(directory, root)
        prefix = "" if prefix == "." else prefix + "/"
        names.extend(prefix + f for f in files)
    return names


@contextmanager
def open_source(path: Path) -> Iterator[tuple[SourceSpec, list[Task]]]:
    """The receipts (and documents) in a folder, ``.zip``, ``.tar.gz`` or ``.tgz``.

    Raises:
        NotFoundError: No such file or folder.
        InputError: Not a folder or a supported archive, or an unreadable archive.
    """
    path = Path(path)
    if path.is_dir():
        yield SourceSpec("dir", str(path)), _pair(_folder_names(path))
        return
    if not path.exists():
        raise NotFoundError(f"no such file or folder: {path}", path=str(path))
    name = path.name.lower()
    if name.endswith(".zip"):
        try:
            with zipfile.ZipFile(path) as archive:
                names = [i.filename for i in archive.infolist() if not i.is_dir()]
        except (zipfile.BadZipFile, OSError) as err:
            raise InputError(f"cannot read zip archive {path}: {err}", path=str(path)) from err
        yield SourceSpec("zip", str(path)), _pair(names)
        return
    if name.endswith((".tar.gz", ".tgz", ".tar")):
        with tempfile.TemporaryDirectory(prefix="careledger-audit-") as unpacked:
            try:
                with tarfile.open(path, "r:*") as archive:
                    archive.extractall(unpacked, filter="data")
            except (tarfile.TarError, OSError) as err:
                raise InputError(f"cannot read tar archive {path}: {err}", path=str(path)) from err
            yield SourceSpec("dir", unpacked), _pair(_folder_names(Path(unpacked)))
        return
    raise InputError(f"{path} is not a folder, .zip, .tar.gz or .tgz", path=str(path))


# --- the local phase (runs in workers) -----------------------------------------------------------

_verifier: LocalVerifier | None = None
_zips: dict[str, zipfile.ZipFile] = {}
_job: tuple[SourceSpec, list[Task]] | None = None
"""The run a worker serves, set once at its start (inherited without pickling when forked)."""


READ_SIZE = 65536
"""Bytes asked of each ``read``: a receipt (~1.6 kB) and most documents come back in one call."""


@contextmanager
def _reader(spec: SourceSpec) -> Iterator[Callable[[str], bytes]]:
    """A function reading a file of the source by name, open for one chunk.

    Folder files are opened relative to a descriptor of the folder, held for the chunk: the kernel
    resolves only the name, not the whole path, for each of the (many, small) files.
    """
    if spec.kind == "zip":
        archive = _zips.get(spec.path)
        if archive is None:
            archive = _zips[spec.path] = zipfile.ZipFile(spec.path)
        yield archive.read
        return
    root = spec.path + "/"
    try:
        folder: int | None = os.open(spec.path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:  # each file then fails to open by its path, and is reported as unreadable
        folder = None

    def read_file(name: str) -> bytes:
        try:
            fd = os.open(name, os.O_RDONLY, dir_fd=folder) if folder is not None else os.open(root + name, os.O_RDONLY)
        except OSError as err:  # name the file as a path, as opening it by path would
            raise OSError(err.errno, err.strerror, root + name) from None
        try:
            data = os.read(fd, READ_SIZE)
            if len(data) < READ_SIZE:
                return data
            chunks = [data]
            while len(chunks[-1]) == READ_SIZE:
                chunks.append(os.read(fd, READ_SIZE))
        finally:
            os.close(fd)
        return b"".join(chunks)

    try:
        yield read_file
    finally:
        if folder is not None:
            os.close(folder)


def _document_digest(name: str, data: bytes) -> bytes:
    return digest_json(data) if name.endswith(JSON_DOCUMENT_SUFFIX) else digest_bytes(data)


def check_chunk(spec: SourceSpec, tasks: list[Task], start: int = 0, stop: int | None = None) -> ChunkResult:
    """Parse and check ``tasks[start:stop]`` locally; group the ones that pass by their chain claim."""
    global _verifier
    if _verifier is None:
        _verifier = LocalVerifier(memo_limit=MEMO_LIMIT)
    stop = len(tasks) if stop is None else stop
    result = ChunkResult(count=stop - start)
    with _reader(spec) as read:
        _check_tasks(tasks, start, stop, read, _verifier.check, result)
    return result


def _check_tasks(tasks: list[Task], start: int, stop: int, read: Callable[[str], bytes],
                 check: Callable[[ParsedReceipt, bytes | None], Failure | None], result: ChunkResult) -> None:
    passed = result.passed
    failures = result.failures
    for index in range(start, stop):
        name, document = tasks[index]
        try:
            receipt = parse_receipt(read(name))
            failure = check(receipt, None if document is None else _document_digest(document, read(document)))
        except InvalidProofError as err:
            failure = Failure("parse", err.message, None, err.details.get("field"))
        except LedgerError as err:  # a document that cannot be canonicalised
            failure = Failure("digest", f"the document cannot be hashed: {err.message}")
        except (OSError, KeyError) as err:
            failure = Failure("parse", f"cannot read the file: {err}")
        if failure is not None:
            failures.append((name, failure))
            continue
        group = passed.get(receipt.claim)
        if group is None:
            passed[receipt.claim] = array("l", (index,))
        else:
            group.append(index)


def _start_worker(spec: SourceSpec, tasks: list[Task]) -> None:
    global _job
    _job = (spec, tasks)


def _check_range(start: int, stop: int) -> ChunkResult:
    """A worker's share: positions ``start:stop`` of the run's task list."""
    assert _job is not None, "a worker is started with its run's tasks"
    return check_chunk(*_job, start, stop)


# --- the whole run -------------------------------------------------------------------------------


def _ranges(total: int, workers: int) -> list[tuple[int, int]]:
    """Chunks of ``CHUNK_SIZE``, smaller towards the end so that the workers finish together."""
    ranges: list[tuple[int, int]] = []
    start = 0
    while start < total:
        size = max(MIN_CHUNK_SIZE, min(CHUNK_SIZE, (total - start) // (2 * workers)))
        ranges.append((start, min(total, start + size)))
        start += size
    return ranges


def _local_phase(spec: SourceSpec, tasks: list[Task], workers: int,
                 progress: Callable[[int], None] | None) -> Iterator[ChunkResult]:
    """The chunks' results, in order; workers get only positions and send back compact results."""
    ranges = _ranges(len(tasks), workers)
    if workers <= 1 or len(tasks) < IN_PROCESS_BELOW:
        for start, stop in ranges:
            yield check_chunk(spec, tasks, start, stop)
            if progress:
                progress(stop - start)
        return
    # fork is fast (no re-import, the task list inherited), but only safe while this process runs
    # no other thread.
    method = "fork" if threading.active_count() == 1 else "spawn"
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context(method),
                             initializer=_start_worker, initargs=(spec, tasks)) as pool:
        for result in pool.map(_check_range, *zip(*ranges, strict=True)):
            yield result
            if progress:
                progress(result.count)


def verify_receipts(
    path: Path, facts: ChainFacts | None, *, workers: int | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> BulkReport:
    """Verify every receipt under ``path`` (folder or archive), locally and against the chain.

    Args:
        path: A folder, ``.zip``, ``.tar.gz`` or ``.tgz`` laid out as this module describes.
        facts: Chain reads (None checks the local steps only).
        workers: Processes for the local phase (default: one per CPU).
        progress: Called as ``progress(phase, done, total)`` with phase ``"local"`` or ``"chain"``.

    Raises:
        NotFoundError, InputError: The source is missing, unreadable, or holds no receipt.
        ChainError: The chain could not be read (could not check).
    """
    workers = workers or os.cpu_count() or 1
    report = BulkReport(source=str(path))
    with open_source(path) as (spec, tasks):
        if not tasks:
            raise InputError(f"no *{RECEIPT_SUFFIX} file in {path}", path=str(path))
        report.total = len(tasks)
        report.with_documents = sum(1 for _, document in tasks if document is not None)
        started = time.perf_counter()
        done = 0

        def step(count: int) -> None:
            nonlocal done
            done += count
            if progress:
                progress("local", done, len(tasks))

        groups: dict[ReceiptClaim, list[array[int]]] = {}
        for result in _local_phase(spec, tasks, workers, step):
            report.failures.extend(result.failures)
            for claim, positions in result.passed.items():
                groups.setdefault(claim, []).append(positions)
        report.seconds_local = time.perf_counter() - started
    started = time.perf_counter()
    report.claims = len(groups)
    for index, (claim, parts) in enumerate(groups.items(), 1):
        failure = facts.first_failure(claim) if facts is not None else None
        if failure is None:
            report.valid += sum(map(len, parts))
        else:
            report.failures.extend((tasks[position][0], failure) for part in parts for position in part)
        if progress:
            progress("chain", index, len(groups))
    report.anchor_reads = facts.anchor_reads if facts is not None else 0
    report.seconds_chain = time.perf_counter() - started
    return report
