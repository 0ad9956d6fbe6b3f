"""Read a tarball (plain, gzip, bzip2 or xz) as one stream, nothing written to disk.

A tarball has no index: its members come one after the other, so they are read in one pass
(``tarfile`` in stream mode over a decompressing stream) and kept in memory as what the checks
need: a receipt's bytes, and a document's digest (computed as it streams past, so a document is
never held longer than it takes to hash it). What is held is thus at most the receipts' bytes.

Every byte that comes out of the decompressor counts towards the run's total
(:class:`~ledger.auditor.read_limits.BoundedStream`, skipped members included: a gzip stream
declares no size), every member is measured against its limit by the size its header declares
before it is read, and the headers that ``tarfile`` would read whole (PAX and GNU long-name
headers) are refused past :data:`HEADER_LIMIT`. Links, FIFOs and devices are refused by kind;
sparse members (whose maps ``tarfile`` would read whole) are refused too.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Final

from ledger.auditor.read_limits import BoundedStream, ReadLimits, not_regular, require_regular_file, too_large
from ledger.exceptions import InputError, LedgerError, PayloadTooLargeError

HEADER_LIMIT: Final = 64 << 10
"""Most bytes of one PAX or GNU long-name header, and of all global PAX headers together."""
_EXTENDED_HEADERS: Final = frozenset(
    {tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE, tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK}
)
_KINDS: Final = {
    tarfile.SYMTYPE: "a symbolic link",
    tarfile.LNKTYPE: "a hard link",
    tarfile.CHRTYPE: "a character device",
    tarfile.BLKTYPE: "a block device",
    tarfile.FIFOTYPE: "a FIFO",
}
_MAGIC: Final[tuple[tuple[bytes, Callable[[BinaryIO], io.BufferedIOBase]], ...]] = (
    (b"\x1f\x8b", lambda raw: gzip.GzipFile(fileobj=raw, mode="rb")),
    (b"BZh", lambda raw: bz2.BZ2File(raw)),
    (b"\xfd7zXZ\x00", lambda raw: lzma.LZMAFile(raw)),  # noqa: SIM115 (closed by read_tar)
)


@dataclass
class StreamedTar:
    """What one pass over a tarball kept: member names (files only, in order, each once), receipts'
    bytes, documents' digests, and why a member was refused or could not be hashed."""

    names: list[str] = field(default_factory=list)
    receipts: dict[str, bytes] = field(default_factory=dict)
    digests: dict[str, bytes] = field(default_factory=dict)
    errors: dict[str, LedgerError] = field(default_factory=dict)


class _BoundedTarInfo(tarfile.TarInfo):
    """A tar header that refuses, before ``tarfile`` reads them whole, extended headers over
    :data:`HEADER_LIMIT` and sparse members (whose maps ``tarfile`` reads whole)."""

    def _proc_member(self, tarfile_: tarfile.TarFile) -> Any:
        if self.type in _EXTENDED_HEADERS:
            seen = self.size + (getattr(tarfile_, "_careledger_global_bytes", 0) if self.type == tarfile.XGLTYPE else 0)
            if seen > HEADER_LIMIT:
                raise PayloadTooLargeError(
                    f"the tarball has a {seen:,}-byte extended header, over the limit of {HEADER_LIMIT:,}",
                    limit=HEADER_LIMIT,
                )
            if self.type == tarfile.XGLTYPE:
                tarfile_._careledger_global_bytes = seen  # type: ignore[attr-defined]
        elif self.type == tarfile.GNUTYPE_SPARSE:
            raise InputError(f"the tarball has a sparse member ({self.name!r}), which is not read")
        return super()._proc_member(tarfile_)  # type: ignore[misc]


def read_tar(
    path: Path,
    limits: ReadLimits,
    *,
    is_receipt: Callable[[str], bool],
    digest: Callable[[str, bytes], bytes],
    wanted: tuple[str, ...],
) -> StreamedTar:
    """One pass over the tarball at ``path``: receipts kept, documents hashed with ``digest(name, data)``.

    Only members whose names end with one of ``wanted`` are kept or reported (any other is passed
    over, so that a tarball of a million junk headers costs no memory).

    Raises:
        NotRegularFileError: ``path`` itself is not a regular file.
        PayloadTooLargeError: The tarball holds more than the total limit, or an oversized header.
        InputError: Not a tarball, or a damaged one (the members before the damage are not checked
            either: a run over a damaged archive could not check it).
    """
    require_regular_file(path)
    kept = StreamedTar()
    seen: set[str] = set()
    with open(path, "rb") as raw:
        head = raw.read(6)
        raw.seek(0)
        opener = next((open_ for magic, open_ in _MAGIC if head.startswith(magic)), None)
        decompressed: io.BufferedIOBase | BinaryIO = opener(raw) if opener is not None else raw
        stream = BoundedStream(decompressed, limits.total_bytes, f"the tarball {path}")
        try:
            with tarfile.open(fileobj=stream, mode="r|", tarinfo=_BoundedTarInfo) as archive:  # type: ignore[call-overload]
                while (member := archive.next()) is not None:
                    archive.members.clear()  # stream mode keeps every header otherwise
                    name = member.name
                    if member.isdir() or not name.endswith(wanted):
                        continue
                    if name not in seen:
                        seen.add(name)
                        kept.names.append(name)
                    for table in (kept.receipts, kept.digests, kept.errors):
                        table.pop(name, None)  # a later member of the same name replaces an earlier one
                    _keep(archive, member, kept, limits, is_receipt(name), digest)
        except (LedgerError, MemoryError):
            raise
        except Exception as err:  # tarfile, gzip, bz2, lzma and zlib each have their own errors
            raise InputError(f"cannot read tar archive {path}: {err}", path=str(path)) from err
        finally:
            decompressed.close()
    return kept


def _keep(
    archive: tarfile.TarFile,
    member: tarfile.TarInfo,
    kept: StreamedTar,
    limits: ReadLimits,
    receipt: bool,
    digest: Callable[[str, bytes], bytes],
) -> None:
    name = member.name
    if not member.isreg():
        kept.errors[name] = not_regular(name, _KINDS.get(member.type, f"a tar member of type {member.type!r}"))
        return
    limit = limits.member_limit(receipt)
    what = "the receipt" if receipt else "the document"
    if member.size > limit:  # refused by its header: tarfile skips it (read and dropped, counted in the total)
        kept.errors[name] = too_large(name, member.size, limit, what)
        return
    content = archive.extractfile(member)
    assert content is not None, "a regular member has content"
    with content:
        data = content.read(limit + 1)
    if len(data) > limit:  # pragma: no cover - tarfile never reads past the size its header gave
        kept.errors[name] = too_large(name, None, limit, what)
    elif receipt:
        kept.receipts[name] = data
    else:
        try:
            kept.digests[name] = digest(name, data)
        except LedgerError as err:  # a JSON document that cannot be canonicalised
            kept.errors[name] = err


__all__ = ["HEADER_LIMIT", "StreamedTar", "read_tar"]
