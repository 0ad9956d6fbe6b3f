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
A tarball is read as one stream in this process, nothing written to disk
(:mod:`ledger.auditor.tar_members`); a zip's directory is read once, and each worker reads its
chunk's members in a few large reads (:mod:`ledger.auditor.zip_members`); a folder's files are
opened relative to the folder, never through a link.

The source is hostile by assumption (:mod:`ledger.auditor.read_limits`): every member is read only
if it is a regular file and within its limit (declared sizes are checked before reading, and
reads are cut off at the limit); a member refused so is reported as *unchecked* with its reason,
and so is the receipt whose document it is. The run's total is checked before reading where sizes
are declared (a zip's directory) and counted as members are read; past it the run stops
(:class:`~ledger.exceptions.PayloadTooLargeError`).

What keeps a run fast (``bench/audit_rate.py`` measures it): the workers are forked with this process's
objects frozen out of the garbage collector's sight (else each worker's first full collection
copies the whole inherited heap); the task list is two plain containers, not a tuple per receipt;
the chain claims are checked in this process while the workers go on with the local steps.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import threading
import time
import zipfile
from array import array
from collections import Counter
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ledger.auditor.read_limits import (
    ReadLimits,
    file_kind,
    not_regular,
    read_listed_file,
    read_regular,
    require_regular_file,
)
from ledger.auditor.receipt_format import Failure, LocalVerifier, ParsedReceipt, ReceiptClaim, parse_receipt
from ledger.auditor.tar_members import StreamedTar, read_tar
from ledger.auditor.verify import ChainFacts
from ledger.auditor.zip_members import ZipMembers
from ledger.exceptions import (
    InputError,
    InvalidProofError,
    LedgerError,
    NotFoundError,
    NotRegularFileError,
    PayloadTooLargeError,
)
from ledger.records.hashing import digest_bytes, digest_json
from ledger.records.verification import DIGEST, PARSE

RECEIPT_SUFFIX = ".receipt.json"
JSON_DOCUMENT_SUFFIX = ".json"
RAW_DOCUMENT_SUFFIX = ".bin"
_WANTED = (RECEIPT_SUFFIX, JSON_DOCUMENT_SUFFIX, RAW_DOCUMENT_SUFFIX)
"""Names a check may read: receipts and documents."""
CHUNK_SIZE = 2_000
MIN_CHUNK_SIZE = 250
MEMO_LIMIT = 16_384
"""Proof memo entries per worker: a few batches' trees. Small, so that emptied memory is reused
(fresh pages cost a fault each); a batch larger than this only re-hashes a few upper nodes."""
IN_PROCESS_BELOW = 5_000
"""Fewer receipts than this are checked in the calling process (starting workers costs more)."""


@dataclass(frozen=True)
class Tasks:
    """The receipts to check, by name in name order, and the documents lying beside some of them.

    Two plain containers rather than a tuple per receipt: a run holds hundreds of thousands.
    """

    receipts: list[str]
    documents: dict[int, str] = field(default_factory=dict)
    """Document name by the position of its receipt in ``receipts``."""
    refused: dict[str, str] = field(default_factory=dict)
    """Files of a folder that its listing says are not regular files, with their kind (never opened)."""

    def __len__(self) -> int:
        return len(self.receipts)


@dataclass(frozen=True)
class SourceSpec:
    """Where receipts are read from, picklable for workers: a folder, a zip file or a tarball
    (already streamed into this process), and the limits its members are read within."""

    kind: str
    path: str
    limits: ReadLimits = field(default_factory=ReadLimits)


REFUSALS = (NotRegularFileError, PayloadTooLargeError)
"""Why a member is not read: a receipt meeting one of these is unchecked, neither valid nor invalid."""


@dataclass(frozen=True, slots=True)
class Unchecked:
    """A receipt that could not be checked: the member refused (itself, or its document) and why."""

    file: str
    member: str
    code: str
    reason: str

    @classmethod
    def of(cls, receipt: str, err: LedgerError) -> Unchecked:
        return cls(receipt, str(err.details.get("member", receipt)), err.code, err.message)


@dataclass
class ChunkResult:
    """The local phase's outcome for one chunk, compact to send back from a worker.

    ``passed`` holds, per chain claim, the positions (in the run's task list) of the receipts that
    passed the local steps; names are looked up only for a claim that fails on chain.
    """

    passed: dict[ReceiptClaim, array[int]] = field(default_factory=dict)
    failures: list[tuple[str, Failure]] = field(default_factory=list)
    unchecked: list[Unchecked] = field(default_factory=list)
    count: int = 0
    bytes_read: int = 0


@dataclass
class BulkReport:
    """The outcome of a bulk verification."""

    source: str
    total: int = 0
    valid: int = 0
    failures: list[tuple[str, Failure]] = field(default_factory=list)
    unchecked: list[Unchecked] = field(default_factory=list)
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
        """The machine-readable report: a summary, every failure with its step and values, and every
        receipt that could not be checked with the member refused and why."""
        return {
            "type": "careledger-receipts-report",
            "version": 1,
            "source": self.source,
            "summary": {
                "receipts": self.total,
                "valid": self.valid,
                "invalid": len(self.failures),
                "unchecked": len(self.unchecked),
                "withDocuments": self.with_documents,
                "distinctClaims": self.claims,
                "anchorReads": self.anchor_reads,
                "failuresByStep": dict(sorted(self.by_step().items())),
                "seconds": round(self.seconds, 3),
                "receiptsPerSecond": round(self.rate),
            },
            "failures": [
                {"file": name, "step": f.step, "detail": f.detail, "expected": f.expected, "actual": f.actual}
                for name, f in sorted(self.failures, key=lambda nf: nf[0])
            ],
            "unchecked": [
                {"file": u.file, "member": u.member, "code": u.code, "reason": u.reason}
                for u in sorted(self.unchecked, key=lambda u: u.file)
            ],
        }


# --- discovering receipts ------------------------------------------------------------------------


def _pair(names: list[str]) -> Tasks:
    """Receipts in name order, each with its document's name if one lies beside it."""
    receipts = [n for n in names if n.endswith(RECEIPT_SUFFIX)]
    receipts.sort()
    tasks = Tasks(receipts)
    if len(receipts) == len(names):  # receipts only, as most bulk checks are: no document to look for
        return tasks
    others = {n for n in names if not n.endswith(RECEIPT_SUFFIX)}
    cut = len(RECEIPT_SUFFIX)
    for index, name in enumerate(receipts):
        stem = name[:-cut]
        document = stem + JSON_DOCUMENT_SUFFIX
        if document not in others:
            document = stem + RAW_DOCUMENT_SUFFIX
        if document in others:
            tasks.documents[index] = document
    return tasks


def _folder_names(root: Path) -> tuple[list[str], dict[str, str]]:
    """Every entry under ``root`` but folders, by its path relative to ``root`` with ``/``
    separators, and those that are not regular files with their kind (a symbolic link, a FIFO...).

    Sub-folders are walked, symbolic links to folders are not, unreadable folders are skipped (as
    ``os.walk``). An entry's type comes with the listing (``d_type``), so telling regular files
    from the others costs no call per file.
    """
    names: list[str] = []
    refused: dict[str, str] = {}
    pending = [("", os.fspath(root))]
    while pending:
        prefix, folder = pending.pop()
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    if entry.is_file(follow_symlinks=False):
                        names.append(prefix + entry.name)
                    elif entry.is_dir(follow_symlinks=False):
                        pending.append((prefix + entry.name + "/", entry.path))
                    else:
                        names.append(prefix + entry.name)
                        refused[prefix + entry.name] = _entry_kind(entry)
        except OSError:
            continue
    return names, refused


def _entry_kind(entry: os.DirEntry[str]) -> str:
    if entry.is_symlink():
        return "a symbolic link"
    try:
        return file_kind(entry.stat(follow_symlinks=False).st_mode)
    except OSError:  # gone since the listing
        return "not a regular file"


def _is_receipt(name: str) -> bool:
    return name.endswith(RECEIPT_SUFFIX)


@contextmanager
def open_source(path: Path, limits: ReadLimits | None = None) -> Iterator[tuple[SourceSpec, Tasks]]:
    """The receipts (and documents) in a folder, ``.zip``, ``.tar.gz``, ``.tgz`` or ``.tar``.

    Raises:
        NotFoundError: No such file or folder.
        NotRegularFileError: An archive path that names a FIFO, device or other non-regular file.
        PayloadTooLargeError: The members to read declare more than ``limits.total_bytes`` together
            (a zip), or a tarball streams more than that.
        InputError: Not a folder or a supported archive, or an unreadable archive.
    """
    path = Path(path)
    limits = limits or ReadLimits()
    if path.is_dir():
        names, refused = _folder_names(path)
        tasks = _pair(names)
        tasks.refused.update((name, kind) for name, kind in refused.items() if name.endswith(_WANTED))
        yield SourceSpec("dir", str(path), limits), tasks
        return
    if not path.exists() and not path.is_symlink():
        raise NotFoundError(f"no such file or folder: {path}", path=str(path))
    name = path.name.lower()
    if name.endswith(".zip"):
        with _zip_source(path, limits) as opened:
            yield opened
        return
    if name.endswith((".tar.gz", ".tgz", ".tar")):
        streamed = read_tar(
            path,
            limits,
            is_receipt=_is_receipt,
            digest=_document_digest,
            wanted=_WANTED,
        )
        _streamed[str(path)] = streamed
        try:
            yield SourceSpec("tar", str(path), limits), _pair(streamed.names)
        finally:
            del _streamed[str(path)]
        return
    raise InputError(f"{path} is not a folder, .zip, .tar.gz or .tgz", path=str(path))


@contextmanager
def _zip_source(path: Path, limits: ReadLimits) -> Iterator[tuple[SourceSpec, Tasks]]:
    require_regular_file(path)
    try:
        zip_archive = zipfile.ZipFile(path)
    except MemoryError:
        raise
    except Exception as err:  # BadZipFile, OSError, and what a damaged directory makes zipfile raise
        raise InputError(f"cannot read zip archive {path}: {err}", path=str(path)) from err
    with zip_archive:
        directory = zip_archive.NameToInfo
        tasks = _pair([i.filename for i in zip_archive.infolist() if not i.is_dir()])
        declared = sum(directory[n].file_size for n in tasks.receipts) + sum(
            directory[n].file_size for n in tasks.documents.values()
        )
        if declared > limits.total_bytes:
            raise PayloadTooLargeError(
                f"the zip archive {path} declares {declared:,} bytes to read, over the limit of "
                f"{limits.total_bytes:,} (--max-total-bytes)",
                path=str(path),
                limit=limits.total_bytes,
            )
        _zip_directories[str(path)] = directory  # for forked workers: not read again
        try:
            yield SourceSpec("zip", str(path), limits), tasks
        finally:
            del _zip_directories[str(path)]
            members = _zips.pop(str(path), None)  # opened here if the chunks were checked in this process
            if members is not None:
                members.close()


# --- the local phase (runs in workers) -----------------------------------------------------------

_verifier: LocalVerifier | None = None
_zips: dict[str, ZipMembers] = {}
_zip_directories: dict[str, dict[str, zipfile.ZipInfo]] = {}
"""Central directories of the zip archives being verified, read once by :func:`open_source`."""
_streamed: dict[str, StreamedTar] = {}
"""Tarballs being verified, as :func:`open_source` streamed them (checked in this process)."""
_job: tuple[SourceSpec, Tasks] | None = None
"""The run a worker serves, set once at its start (inherited without pickling when forked)."""


Read = Callable[[str], bytes]
"""Reads a member by name: a receipt's bytes, or (for a document) its digest."""


@contextmanager
def _reader(
    spec: SourceSpec, tasks: Tasks, names: Callable[[], list[str]], result: ChunkResult
) -> Iterator[tuple[Read, Read]]:
    """Two functions for one chunk (whose files ``names`` lists, when asked): one reading a receipt
    by name, one giving a document's digest by name. Bytes read are counted in ``result``.

    Folder files are opened relative to a descriptor of the folder, held for the chunk: the kernel
    resolves only the name, not the whole path, for each of the (many, small) files. A zip's
    members are read a chunk at a time, in a few large reads (:class:`ZipMembers`). A tarball's
    were read as it streamed (:mod:`ledger.auditor.tar_members`).

    Raises (from the functions):
        NotRegularFileError, PayloadTooLargeError: The member is refused unread.
        OSError, KeyError: It cannot be read.
    """
    limits = spec.limits
    if spec.kind == "tar":
        yield _tar_reader(_streamed[spec.path])
        return
    if spec.kind == "zip":
        members = _zips.get(spec.path)
        if members is None:
            members = _zips[spec.path] = ZipMembers(
                spec.path,
                _zip_directories.get(spec.path),
                lambda name: limits.member_limit(_is_receipt(name)),
                floor=min(limits.receipt_bytes, limits.document_bytes),
            )
        members.load(names())

        def read_member(name: str) -> bytes:
            data = members.read(name)
            result.bytes_read += len(data)
            return data

        yield read_member, lambda name: _document_digest(name, read_member(name))
        return
    root = spec.path + "/"
    try:
        folder: int | None = os.open(spec.path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:  # each file then fails to open by its path, and is reported as unreadable
        folder = None
    prefix = "" if folder is not None else root
    receipt_limit, document_limit, refused = limits.receipt_bytes, limits.document_bytes, tasks.refused

    def read_receipt(name: str) -> bytes:
        if refused and name in refused:
            raise not_regular(name, refused[name])
        try:  # the listing said regular: no fstat (see read_listed_file)
            data = read_listed_file(prefix + name, receipt_limit, "the receipt", folder)
        except REFUSALS:
            raise
        except OSError as err:  # name the file as a path, as opening it by path would
            raise OSError(err.errno, err.strerror, root + name) from None
        result.bytes_read += len(data)
        return data

    def document_digest(name: str) -> bytes:
        if refused and name in refused:
            raise not_regular(name, refused[name])
        try:  # a document may be large: its size is checked before it is read
            data = read_regular(prefix + name, document_limit, "the document", dir_fd=folder)
        except REFUSALS:
            raise
        except OSError as err:
            raise OSError(err.errno, err.strerror, root + name) from None
        result.bytes_read += len(data)
        return _document_digest(name, data)

    try:
        yield read_receipt, document_digest
    finally:
        if folder is not None:
            os.close(folder)


def _tar_reader(streamed: StreamedTar) -> tuple[Read, Read]:
    def lookup(table: dict[str, bytes], name: str) -> bytes:
        value = table.get(name)
        if value is None:
            raise streamed.errors.get(name) or KeyError(name)
        return value

    return (lambda name: lookup(streamed.receipts, name)), (lambda name: lookup(streamed.digests, name))


def _document_digest(name: str, data: bytes) -> bytes:
    return digest_json(data) if name.endswith(JSON_DOCUMENT_SUFFIX) else digest_bytes(data)


def check_chunk(spec: SourceSpec, tasks: Tasks, start: int = 0, stop: int | None = None) -> ChunkResult:
    """Parse and check ``tasks[start:stop]`` locally; group the ones that pass by their chain claim."""
    global _verifier
    if _verifier is None:
        _verifier = LocalVerifier(memo_limit=MEMO_LIMIT)
    stop = len(tasks) if stop is None else stop
    result = ChunkResult(count=stop - start)

    def names() -> list[str]:
        documents = tasks.documents
        return [*tasks.receipts[start:stop], *(documents[i] for i in range(start, stop) if i in documents)]

    with _reader(spec, tasks, names, result) as (read, digest):
        _check_tasks(tasks, start, stop, read, digest, _verifier.check, result)
    return result


def _check_tasks(
    tasks: Tasks,
    start: int,
    stop: int,
    read: Read,
    digest: Read,
    check: Callable[[ParsedReceipt, bytes | None], Failure | None],
    result: ChunkResult,
) -> None:
    passed = result.passed
    failures = result.failures
    receipts, documents_at = tasks.receipts, tasks.documents.get
    for index in range(start, stop):
        name = receipts[index]
        document = documents_at(index)
        try:
            receipt = parse_receipt(read(name))
            failure = check(receipt, None if document is None else digest(document))
        except REFUSALS as err:  # the receipt or its document not read: neither valid nor invalid
            result.unchecked.append(Unchecked.of(name, err))
            continue
        except InvalidProofError as err:
            failure = Failure(PARSE.name, err.message, None, err.details.get("field"))
        except LedgerError as err:  # a document that cannot be canonicalised
            failure = Failure(DIGEST.name, f"the document cannot be hashed: {err.message}")
        except (OSError, KeyError) as err:
            failure = Failure(PARSE.name, f"cannot read the file: {err}")
        if failure is not None:
            failures.append((name, failure))
            continue
        group = passed.get(receipt.claim)
        if group is None:
            passed[receipt.claim] = array("l", (index,))
        else:
            group.append(index)


def _start_worker(spec: SourceSpec, tasks: Tasks) -> None:
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


def _local_phase(
    spec: SourceSpec, tasks: Tasks, workers: int, progress: Callable[[int], None] | None
) -> Generator[ChunkResult, None, None]:
    """The chunks' results, in order; workers get only positions and send back compact results."""
    ranges = _ranges(len(tasks), workers)
    if workers <= 1 or len(tasks) < IN_PROCESS_BELOW or spec.kind == "tar":  # a tarball is already in memory
        for start, stop in ranges:
            yield check_chunk(spec, tasks, start, stop)
            if progress:
                progress(stop - start)
        return
    # fork is fast (no re-import, the task list inherited), but only safe while this process runs
    # no other thread. The objects inherited are frozen out of the collector's sight first: a
    # worker's first full collection would otherwise walk (and so copy, page by page) this
    # process's whole heap, which cost more than checking ten thousand receipts.
    method = "fork" if threading.active_count() == 1 else "spawn"
    gc.freeze()
    try:
        pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context(method),
            initializer=_start_worker,
            initargs=(spec, tasks),
        )
        try:
            for result in pool.map(_check_range, *zip(*ranges, strict=True)):  # the workers start here
                yield result
                if progress:
                    progress(result.count)
        finally:  # on an error (or the caller stopping early) the chunks not started are dropped
            pool.shutdown(wait=True, cancel_futures=True)
    finally:
        gc.unfreeze()


def verify_receipts(
    path: Path,
    facts: ChainFacts | None,
    *,
    workers: int | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    limits: ReadLimits | None = None,
) -> BulkReport:
    """Verify every receipt under ``path`` (folder or archive), locally and against the chain.

    Each distinct chain claim is checked as soon as a chunk first brings it back, while the workers
    go on with the local steps (this process would only wait for them otherwise); the time of
    those chain reads therefore counts in ``seconds_local``, and ``seconds_chain`` is what remains
    after the local phase.

    Args:
        path: A folder, ``.zip``, ``.tar.gz`` or ``.tgz`` laid out as this module describes.
        facts: Chain reads (None checks the local steps only).
        workers: Processes for the local phase (default: one per CPU).
        progress: Called as ``progress(phase, done, total)`` with phase ``"local"`` or ``"chain"``.
        limits: How much to read per receipt, per document and in all (default :class:`ReadLimits`).

    Raises:
        NotFoundError, InputError: The source is missing, unreadable, or holds no receipt.
        PayloadTooLargeError: The source holds more than ``limits.total_bytes`` to read (could not check).
        ChainError: The chain could not be read (could not check).
    """
    workers = workers or os.cpu_count() or 1
    limits = limits or ReadLimits()
    report = BulkReport(source=str(path))
    with open_source(path, limits) as (spec, tasks):
        if not tasks:
            raise InputError(f"no *{RECEIPT_SUFFIX} file in {path}", path=str(path))
        report.total = len(tasks)
        report.with_documents = len(tasks.documents)
        started = time.perf_counter()
        done = 0

        def step(count: int) -> None:
            nonlocal done
            done += count
            if progress:
                progress("local", done, len(tasks))

        groups: dict[ReceiptClaim, list[array[int]]] = {}
        verdicts: dict[ReceiptClaim, Failure | None] = {}
        read = 0
        with closing(_local_phase(spec, tasks, workers, step)) as results:  # a chain error stops the workers
            for result in results:
                read += result.bytes_read
                if read > limits.total_bytes:  # a folder declares nothing up front: counted as it is read
                    raise PayloadTooLargeError(
                        f"{path} holds more than {limits.total_bytes:,} bytes to read (--max-total-bytes)",
                        path=str(path),
                        limit=limits.total_bytes,
                    )
                report.failures.extend(result.failures)
                report.unchecked.extend(result.unchecked)
                for claim, positions in result.passed.items():
                    parts = groups.get(claim)
                    if parts is None:
                        parts = groups[claim] = []
                        verdicts[claim] = facts.first_failure(claim) if facts is not None else None
                    parts.append(positions)
        report.seconds_local = time.perf_counter() - started
    started = time.perf_counter()
    report.claims = len(groups)
    receipts = tasks.receipts
    for index, (claim, parts) in enumerate(groups.items(), 1):
        failure = verdicts[claim]
        if failure is None:
            report.valid += sum(map(len, parts))
        else:
            report.failures.extend((receipts[position], failure) for part in parts for position in part)
        if progress:
            progress("chain", index, len(groups))
    report.anchor_reads = facts.anchor_reads if facts is not None else 0
    report.seconds_chain = time.perf_counter() - started
    return report
