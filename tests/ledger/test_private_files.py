"""The data directory is its user's alone: 0700, files 0600, tightened at start whatever the umask."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from ledger.config import Settings
from ledger.files.private import secure_data_dir
from tests.support.chain_under_test import ChainUnderTest


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_a_wider_tree_is_tightened_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    data = tmp_path / "data"
    (data / "keys").mkdir(parents=True)
    (data / "keys").chmod(0o755)  # explicitly: whatever umask the test process has
    data.chmod(0o755)
    (data / "ledger.sqlite3").write_bytes(b"")
    (data / "ledger.sqlite3").chmod(0o644)
    (data / "keys" / "admin.json").write_text("{}")
    (data / "keys" / "admin.json").chmod(0o664)
    (data / "read-only").write_text("")
    (data / "read-only").chmod(0o444)
    (data / "private").write_text("")
    (data / "private").chmod(0o600)
    (data / "link").symlink_to(tmp_path)
    outside = mode(tmp_path)
    with caplog.at_level(logging.WARNING, logger="careledger.files"):
        tightened = secure_data_dir(data)
    assert sorted(p.name for p in tightened) == ["admin.json", "data", "keys", "ledger.sqlite3", "read-only"]
    assert (mode(data), mode(data / "keys"), mode(data / "ledger.sqlite3")) == (0o700, 0o700, 0o600)
    assert (mode(data / "keys" / "admin.json"), mode(data / "read-only"), mode(data / "private")) == (
        0o600,
        0o400,
        0o600,
    )
    assert mode(tmp_path) == outside  # the link's target is not touched
    assert len([r for r in caplog.records if "was readable by other users" in r.getMessage()]) == 5
    assert secure_data_dir(data) == []  # nothing left to do


def test_every_file_is_private_after_start_under_umask_022(
    tmp_path: Path, chain_under_test: ChainUnderTest, store_overrides: dict[str, str]
) -> None:
    settings: Settings = chain_under_test.settings(tmp_path / "data", **store_overrides)
    previous = os.umask(0o022)
    try:
        with chain_under_test.isolated(), TestClient(create_app(settings)) as client:
            assert client.get("/healthz").status_code == 200
            found = {p: mode(p) for p in [tmp_path / "data", *(tmp_path / "data").rglob("*")] if not p.is_symlink()}
    finally:
        os.umask(previous)
    names = {p.name for p in found}
    assert "deployment.json" in names  # on PostgreSQL the keys and the store live in the database
    if not store_overrides:
        assert {"ledger.sqlite3", "ledger.sqlite3-wal", "keys"} <= names
    assert {p: oct(m) for p, m in found.items() if m & 0o077} == {}
    assert mode(tmp_path / "data") == 0o700
