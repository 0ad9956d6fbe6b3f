"""A small disk of the test's own, to fill: a tmpfs mounted for one test (root only).

``small_disk`` mounts a tmpfs of :data:`DISK_SIZE` on a new directory and unmounts it afterwards;
:func:`fill` writes a file until the disk says ENOSPC, and removing that file frees the space at
once. Without root (or where mounting is not allowed) the test is skipped, and under CI that is a
failure (:func:`tests.support.requirements.unavailable`).
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.requirements import unavailable

DISK_SIZE = "20m"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of :data:`DISK_SIZE` mounted on a new directory, unmounted after the test."""
    if os.geteuid() != 0:
        unavailable("mounting a tmpfs (a disk to fill) needs root")
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_SIZE},mode=0700", "tmpfs", str(disk)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        unavailable(f"cannot mount a tmpfs: {mounted.stderr.strip()}")
    try:
        yield disk
    finally:
        if subprocess.run(["umount", str(disk)], capture_output=True, check=False).returncode != 0:
            subprocess.run(["umount", "--lazy", str(disk)], check=True)  # a file on it is still open


def fill(disk: Path) -> Path:
    """Write a file until ``disk`` is full (ENOSPC even for one page); return the file."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as out:
        for chunk in (b"\0" * (1 << 20), b"\0" * 4096):
            try:
                while True:
                    out.write(chunk)
            except OSError as err:
                assert err.errno == errno.ENOSPC, err
    return filler
