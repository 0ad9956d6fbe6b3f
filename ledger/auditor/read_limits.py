"""How much the auditor reads from input it cannot trust, and reading only regular files.

Archives and folders come from the party being audited, so every read is bounded twice: against
the size a member declares before any byte is read (a zip's directory, a tar header, ``fstat``),
and while reading, since a declared size can lie (a zip member's) or be missing (a gzip stream).
A receipt is small (:data:`RECEIPT_LIMIT`); a document may be larger, up to
:attr:`ReadLimits.document_bytes`; all that a run reads is at most :attr:`ReadLimits.total_bytes`.
A member over its limit is refused unread and reported (:class:`~ledger.exceptions.PayloadTooLargeError`);
a run over the total stops ("could not check").

Files are opened with ``O_NOFOLLOW | O_NONBLOCK`` and read only if ``fstat`` says regular: a
symbolic link (to ``/dev/zero``, or out of the folder), a FIFO (which would block) or a device
(which never ends) is refused with its kind named (:class:`~ledger.exceptions.NotRegularFileError`).
A folder's receipts are the one exception to the ``fstat``: their kind comes with the folder's
listing, at no cost per file (:func:`read_listed_file` says why that is as safe).
"""

from __future__ import annotations

import errno
import io
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final

from ledger.exceptions import NotRegularFileError, PayloadTooLargeError

RECEIPT_LIMIT: Final = 64 << 10
"""Most bytes of one receipt (a receipt with the longest proof allowed is under 8 KiB)."""
DOCUMENT_LIMIT: Final = 64 << 20
"""Default most bytes of one document (``--max-document-bytes``)."""
TOTAL_LIMIT: Final = 4 << 30
"""Default most bytes a run reads, all members together (``--max-total-bytes``)."""
READ_SIZE: Final = 1 << 20
"""Bytes asked of each ``read`` past the first (the first asks for the whole file, up to its limit)."""

_OPEN_FLAGS: Final = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
_NO_FOLLOW_FLAGS: Final = _OPEN_FLAGS | os.O_NOFOLLOW
_FORMAT: Final = stat.S_IFMT(0o7777777)
_REGULAR: Final = stat.S_IFREG
_KINDS: Final = (
    (stat.S_ISLNK, "a symbolic link"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISDIR, "a directory"),
)


@dataclass(frozen=True, slots=True)
class ReadLimits:
    """Most bytes read per receipt, per document and in all (each at least 1)."""

    receipt_bytes: int = RECEIPT_LIMIT
    document_bytes: int = DOCUMENT_LIMIT
    total_bytes: int = TOTAL_LIMIT

    def __post_init__(self) -> None:
        for name in ("receipt_bytes", "document_bytes", "total_bytes"):
            if getattr(self, name) < 1:
                raise PayloadTooLargeError(f"{name} must be at least 1", field=name)

    def member_limit(self, is_receipt: bool) -> int:
        return self.receipt_bytes if is_receipt else self.document_bytes


def too_large(name: str, size: int | None, limit: int, what: str) -> PayloadTooLargeError:
    """The refusal of member ``name`` (``size`` bytes, or more than ``limit`` read so far)."""
    amount = f"{size:,} bytes" if size is not None else f"more than {limit:,} bytes"
    return PayloadTooLargeError(f"{what} is {amount}, over the limit of {limit:,}", member=name, limit=limit)


def file_kind(mode: int) -> str:
    """What a non-regular file is, in words."""
    return next((kind for test, kind in _KINDS if test(mode)), f"not a regular file (mode {stat.S_IFMT(mode):o})")


def not_regular(name: str, kind: str) -> NotRegularFileError:
    return NotRegularFileError(f"{name} is {kind}: not read", member=name, kind=kind)


def open_regular(name: str, *, dir_fd: int | None = None, follow: bool = False) -> tuple[int, int]:
    """A descriptor of ``name`` (relative to ``dir_fd`` if given) and its size, refused unless a
    regular file.

    ``follow=False`` refuses a symbolic link itself (``O_NOFOLLOW``: for members of a folder being
    audited); ``follow=True`` opens what a link names, still only if that is a regular file (for a
    path the auditor gave on the command line).

    Raises:
        NotRegularFileError: A link (unless followed), FIFO, device, socket or directory.
        OSError: It cannot be opened (missing, no permission).
    """
    try:
        fd = os.open(name, _OPEN_FLAGS if follow else _NO_FOLLOW_FLAGS, dir_fd=dir_fd)
    except OSError as err:
        raise _refusal(name, err, follow) from None
    status = os.fstat(fd)
    if status.st_mode & _FORMAT != _REGULAR:
        os.close(fd)
        raise not_regular(name, file_kind(status.st_mode))
    return fd, status.st_size


def read_regular(name: str, limit: int, what: str, *, dir_fd: int | None = None, follow: bool = False) -> bytes:
    """The content of the regular file ``name``, at most ``limit`` bytes: opened as
    :func:`open_regular` opens it, refused by its size before reading, and cut off while reading
    if it holds more than its size said. (One function, not two: it runs once per receipt.)

    Raises:
        NotRegularFileError: As :func:`open_regular`.
        PayloadTooLargeError: Over the limit.
        OSError: It cannot be opened or read.
    """
    try:
        fd = os.open(name, _OPEN_FLAGS if follow else _NO_FOLLOW_FLAGS, dir_fd=dir_fd)
    except OSError as err:
        raise _refusal(name, err, follow) from None
    try:
        status = os.fstat(fd)
        if status.st_mode & _FORMAT != _REGULAR:
            raise not_regular(name, file_kind(status.st_mode))
        size = status.st_size
        if size > limit:
            raise too_large(name, size, limit, what)
        data = os.read(fd, size + 1)
        if len(data) <= size:  # the usual case: the whole file in one read (a short read is its end)
            return data
        return _read_on(fd, data, name, limit, what)
    finally:
        os.close(fd)


def read_listed_file(name: str, limit: int, what: str, dir_fd: int | None) -> bytes:
    """The content of a folder's file that its listing said is regular (``d_type``), at most
    ``limit`` bytes, without the ``fstat`` per file that :func:`read_regular` makes (it runs once
    per receipt, and a receipt's limit is small enough to read up to it).

    Should the file have been replaced since the listing, ``O_NOFOLLOW | O_NONBLOCK`` and the
    bounded read still hold: a link is refused, a FIFO reads as empty instead of blocking, a device
    reads no more than ``limit`` bytes before it is refused.

    Raises:
        NotRegularFileError: A symbolic link.
        PayloadTooLargeError: Over the limit.
        OSError: It cannot be opened or read.
    """
    try:
        fd = os.open(name, _NO_FOLLOW_FLAGS, dir_fd=dir_fd)
    except OSError as err:
        raise _refusal(name, err, False) from None
    try:
        data = os.read(fd, limit + 1)
        if len(data) > limit:
            raise too_large(name, None, limit, what)
        return data  # a short read of a regular file is its end
    finally:
        os.close(fd)


def _refusal(name: str, err: OSError, follow: bool) -> Exception:
    """An ``os.open`` failure as raised: a link met with ``O_NOFOLLOW`` is named as such."""
    return not_regular(name, "a symbolic link") if err.errno == errno.ELOOP and not follow else err


def _read_on(fd: int, first: bytes, name: str, limit: int, what: str) -> bytes:
    """The rest of a file that holds more than ``fstat`` said, up to the limit."""
    chunks, total = [first], len(first)
    while True:
        if total > limit:
            raise too_large(name, None, limit, what)
        chunk = os.read(fd, min(READ_SIZE, limit + 1 - total))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        total += len(chunk)


def read_regular_file(path: Path, limit: int, what: str) -> bytes:
    """The content of a file named on the command line (links followed), bounded as above.

    Raises:
        NotRegularFileError, PayloadTooLargeError, OSError: As :func:`read_regular`.
    """
    return read_regular(os.fspath(path), limit, what, follow=True)


def require_regular_file(path: Path) -> None:
    """Refuse a source that is not a regular file (a FIFO would block an archive reader forever).

    Raises:
        NotRegularFileError, OSError: As :func:`open_regular` with ``follow=True``.
    """
    os.close(open_regular(os.fspath(path), follow=True)[0])


class BoundedStream:
    """A binary stream that refuses to yield more than ``limit`` bytes in all (a gzip stream
    declares no size: the count of what came out is the only bound).

    Raises (from :meth:`read`):
        PayloadTooLargeError: More than ``limit`` bytes read.
    """

    def __init__(self, inner: io.BufferedIOBase | BinaryIO, limit: int, what: str) -> None:
        self._inner = inner
        self._limit = limit
        self._what = what
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        if size < 0 or size > READ_SIZE:
            size = READ_SIZE  # a reader asking for everything gets it a piece at a time
        data = self._inner.read(size)
        self.count += len(data)
        if self.count > self._limit:
            raise PayloadTooLargeError(
                f"{self._what} holds more than {self._limit:,} bytes (--max-total-bytes)", limit=self._limit
            )
        return data


__all__ = [
    "DOCUMENT_LIMIT",
    "RECEIPT_LIMIT",
    "TOTAL_LIMIT",
    "BoundedStream",
    "ReadLimits",
    "file_kind",
    "not_regular",
    "open_regular",
    "read_listed_file",
    "read_regular",
    "read_regular_file",
    "require_regular_file",
    "too_large",
]
