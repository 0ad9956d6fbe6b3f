"""Exclusive, non-blocking locks on files: one writing process per embedded chain or SQLite store.

The kernel drops an ``flock`` when its holder dies, so a killed writer never leaves a stale lock.
The descriptor is not inherited across ``exec``, but a ``fork`` child shares the lock. The holder
writes its pid into the file so that the refusal can name it.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable
from pathlib import Path

from ledger.exceptions import LedgerError


def acquire(
    lock_path: Path, held_by_other: Callable[[int | None], LedgerError], unusable: Callable[[OSError], LedgerError]
) -> int:
    """Take the lock without waiting; return the descriptor holding it.

    Raises ``held_by_other(pid)`` if another process holds it, ``unusable(err)`` if the file cannot
    be opened.
    """
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as err:
        raise unusable(err) from err
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        holder = _holder(fd)
        os.close(fd)
        raise held_by_other(holder) from err
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def release(fd: int) -> None:
    """Release the lock and close its descriptor (the lock file itself stays)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _holder(fd: int) -> int | None:
    """The pid the current holder wrote into the lock file, if readable."""
    try:
        return int(os.pread(fd, 32, 0).decode().strip())
    except (OSError, ValueError):
        return None
