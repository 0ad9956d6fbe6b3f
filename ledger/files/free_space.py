"""How much room the data directory has left: readiness says "not ready" before writes start failing.

A full disk refuses writes with ``storage_full`` (the store's and the embedded chain's own checks);
readiness looks ahead of that, so a load balancer stops sending registrations to a replica whose
data directory is (nearly) full, and sends them again once space is freed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class FreeSpace:
    """The bytes an unprivileged writer may still use on the data directory's filesystem, and the least wanted."""

    free_bytes: int
    min_free_bytes: int

    @property
    def enough(self) -> bool:
        return self.free_bytes >= self.min_free_bytes


def free_space(directory: Path, min_free_bytes: int) -> FreeSpace:
    """The room left where ``directory`` lives (``statvfs``: blocks available to non-root users).

    A directory that cannot be examined (removed, unreadable) has no room: nothing could be written there."""
    try:
        stats = os.statvfs(directory)
    except OSError:
        return FreeSpace(0, min_free_bytes)
    return FreeSpace(stats.f_bavail * stats.f_frsize, min_free_bytes)
