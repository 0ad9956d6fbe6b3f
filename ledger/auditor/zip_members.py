"""Read many small members of a zip archive with a few large reads, each member bounded.

``zipfile.ZipFile.read`` costs a seek, a header read and a decompressing file object per member
(tens of microseconds); a bulk check reads thousands of members that lie next to each other. So
:class:`ZipMembers` reads the span of the archive holding a chunk's members in one call and cuts
each member out of it: stored members as they are, deflated ones inflated with ``zlib``.

The checks ``ZipFile.read`` makes are kept: the local header's signature and file name must match
the central directory's, the member must be neither encrypted nor patched, and the content must
have the directory's size and CRC-32. A member that is not plainly stored or deflated, or that
fails any of these checks, is left to ``zipfile``, which raises what it always raises (turned
into :class:`OSError` here: to a verifier, such a member is an unreadable file).

The archive is hostile by assumption, so a member is refused unread when its declared size is
over its limit (:class:`~ledger.auditor.read_limits.ReadLimits`), and no read yields more than
the declared size: the fast path inflates at most one byte past it (more means the directory
lied, and ``zipfile`` is left to judge), and ``zipfile`` is read in bounded pieces (its
``read()`` of a whole member would inflate all the compressed bytes at once, whatever the
directory says). The declared sizes summed are therefore also the most a run reads.
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from collections.abc import Callable, Iterable
from typing import BinaryIO, Final

from ledger.auditor.read_limits import too_large

SPAN_LIMIT: Final = 8 << 20
"""Most bytes read at once; a member compressed to more than this is left to ``zipfile``."""
GAP_LIMIT: Final = 64 << 10
"""Members further apart than this are read in separate spans rather than reading the gap."""
HEADER_SLACK: Final = 1024
"""Bytes read past the last member's estimated end: its local header may be longer than the
directory's figures suggest (a local extra field of another size)."""

_LOCAL_HEADER: Final = struct.Struct("<4s2B4HL2L2H")
"""A local file header (APPNOTE 4.3.7), as ``zipfile`` reads it."""
_LOCAL_SIGNATURE: Final = b"PK\x03\x04"
_PLAIN_METHODS: Final = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED})
_UNSUPPORTED_FLAGS: Final = 0x01 | 0x20 | 0x40  # encrypted, compressed patch, strong encryption
_UTF8_NAME: Final = 0x800


class ZipMembers:
    """The members of one zip archive, read a chunk at a time.

    Args:
        path: The archive, opened here for raw reads.
        directory: Its central directory (``ZipFile.NameToInfo``) if already read, as a worker
            forked from the process that listed the archive has it; else it is read here.
            (A ``ZipFile`` object itself is not shared: its file position would be.)
        limit_of: The most bytes a member may have, by name (no limit if not given).
        floor: Members of at most this many bytes are within their limit whatever their name
            (spares asking ``limit_of`` for each of thousands of small members).

    Raises:
        zipfile.BadZipFile, OSError: The archive cannot be opened.
    """

    def __init__(
        self,
        path: str,
        directory: dict[str, zipfile.ZipInfo] | None = None,
        limit_of: Callable[[str], int] | None = None,
        floor: int = 0,
    ) -> None:
        self._path = path
        self._limit_of = limit_of
        self._floor = floor
        self._archive: zipfile.ZipFile | None = None
        if directory is None:
            self._archive = zipfile.ZipFile(path)
            directory = self._archive.NameToInfo
        self._directory = directory
        self._file: BinaryIO = open(path, "rb")  # noqa: SIM115 (held for the worker's life, closed by close())
        self._loaded: dict[str, bytes] = {}

    def load(self, names: Iterable[str]) -> None:
        """Read the named members (the next chunk's) in as few reads as their places allow.

        Unknown names are skipped here; :meth:`read` reports them.
        """
        self._loaded.clear()
        known, limit_of, floor = self._directory, self._limit_of, self._floor
        infos = sorted(
            (
                info
                for info in (known[name] for name in names if name in known)
                if info.compress_size <= SPAN_LIMIT
                and (info.file_size <= floor or limit_of is None or info.file_size <= limit_of(info.filename))
            ),
            key=lambda info: info.header_offset,
        )
        span: list[zipfile.ZipInfo] = []
        start = end = 0
        for info in infos:
            member_end = (
                info.header_offset
                + _LOCAL_HEADER.size
                + len(info.filename.encode())
                + len(info.extra)
                + info.compress_size
            )
            if span and (info.header_offset - end > GAP_LIMIT or member_end - start > SPAN_LIMIT):
                self._load_span(span, start, end)
                span = []
            if span:
                end = max(end, member_end)
            else:
                start, end = info.header_offset, member_end
            span.append(info)
        if span:
            self._load_span(span, start, end)

    def read(self, name: str) -> bytes:
        """A member's content (read by :meth:`load`, else by ``zipfile``).

        Raises:
            KeyError: No such member.
            PayloadTooLargeError: The member's declared size is over its limit (it is not read).
            OSError: The member cannot be read (damaged, encrypted, unsupported compression, ...).
        """
        content = self._loaded.pop(name, None)
        if content is not None:
            return content
        info = self._directory.get(name)
        if info is None:
            raise KeyError(f"There is no item named {name!r} in the archive")
        limit = info.file_size if self._limit_of is None else self._limit_of(name)
        if info.file_size > limit:
            raise too_large(name, info.file_size, limit, "the member")
        try:
            if self._archive is None:  # a member out of the ordinary: rare, worth a directory read
                self._archive = zipfile.ZipFile(self._path)
            with self._archive.open(name) as member:  # pieces: never more than the declared size
                return member.read(info.file_size + 1)  # +1: reach the end, where the CRC-32 is checked
        except MemoryError:
            raise
        except Exception as err:  # BadZipFile, zlib.error, EOFError, NotImplementedError, a bad name's encoding...
            raise OSError(f"cannot read {name} from the zip archive: {err}") from err

    def close(self) -> None:
        self._file.close()
        if self._archive is not None:
            self._archive.close()

    def _load_span(self, span: list[zipfile.ZipInfo], start: int, end: int) -> None:
        self._file.seek(start)
        data = self._file.read(end + HEADER_SLACK - start)
        for info in span:
            content = _member(data, info.header_offset - start, info)
            if content is not None:
                self._loaded[info.filename] = content


def _member(data: bytes, offset: int, info: zipfile.ZipInfo) -> bytes | None:
    """The member's content cut from ``data`` (the archive from some point on), or None when
    anything is unusual: ``zipfile`` then reads it, and reports what is wrong."""
    if info.flag_bits & _UNSUPPORTED_FLAGS or info.compress_type not in _PLAIN_METHODS:
        return None
    header_end = offset + _LOCAL_HEADER.size
    if header_end > len(data):
        return None
    (signature, _, _, flags, _, _, _, _, _, _, name_length, extra_length) = _LOCAL_HEADER.unpack_from(data, offset)
    start = header_end + name_length + extra_length
    stop = start + info.compress_size
    if signature != _LOCAL_SIGNATURE or stop > len(data):
        return None
    raw_name = data[header_end : header_end + name_length]
    try:
        name = raw_name.decode("utf-8") if flags & _UTF8_NAME else raw_name.decode("cp437")
    except UnicodeDecodeError:
        return None
    if name != info.orig_filename:
        return None
    content = data[start:stop]
    if info.compress_type == zipfile.ZIP_DEFLATED:
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        try:  # one byte more than declared at most: enough to see that the directory lied
            content = inflater.decompress(content, info.file_size + 1)
        except zlib.error:
            return None
        if not inflater.eof:
            return None
    if len(content) != info.file_size or zlib.crc32(content) != info.CRC:
        return None
    return content


__all__ = ["ZipMembers"]
