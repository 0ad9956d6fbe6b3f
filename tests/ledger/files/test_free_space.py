"""The data directory's free room, as readiness reads it, on a disk of the test's own."""

from __future__ import annotations

from pathlib import Path

from ledger.files.free_space import free_space
from tests.support.small_disk import DISK_SIZE, fill

MIN_FREE = 1 << 20


def test_a_filled_disk_has_no_room_and_has_it_again_once_freed(small_disk: Path) -> None:
    empty = free_space(small_disk, MIN_FREE)
    assert empty.enough and MIN_FREE < empty.free_bytes <= int(DISK_SIZE.rstrip("m")) << 20
    filler = fill(small_disk)
    full = free_space(small_disk, MIN_FREE)
    assert not full.enough and full.free_bytes < 64 << 10
    filler.unlink()
    assert free_space(small_disk, MIN_FREE).free_bytes == empty.free_bytes


def test_a_directory_that_cannot_be_examined_has_no_room(tmp_path: Path) -> None:
    assert free_space(tmp_path / "gone", 0).free_bytes == 0
    assert not free_space(tmp_path / "gone", 1).enough
