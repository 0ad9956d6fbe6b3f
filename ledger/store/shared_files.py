"""Small write-once files shared by replicas: the encrypted keystore entries and the deployment record.

With one API process they are files in the data directory. With several replicas on PostgreSQL
they live in the database (``shared_documents``), so that every replica finds the same keys and the
same contracts without sharing a file system: a key created by one replica (a new organisation's)
is usable by all, and only one replica ever deploys. SharedFiles are written once; when two
processes create the same document at once, the first write wins and both use it.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Protocol

import psycopg

from ledger.exceptions import DeploymentError
from ledger.store import postgres


class SharedFiles(Protocol):
    """Named text files, each written once."""

    def read(self, name: str) -> str | None:
        """The document, or None if there is none of that name."""
        ...

    def create(self, name: str, body: str) -> str:
        """Store ``body`` under ``name`` unless a document of that name exists; return the stored one."""
        ...

    def names(self, folder: str) -> list[str]:
        """Names of the documents in ``folder`` (``keys/``), without the folder."""
        ...

    def exclusive(self, name: str) -> AbstractContextManager[None]:
        """Held by one process at a time (around deploying, so that only one deploys)."""
        ...


class DirectoryFiles:
    """SharedFiles as files under a directory (mode 0600, written atomically); one process uses them."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def read(self, name: str) -> str | None:
        path = self.root / name
        return path.read_text("utf-8") if path.exists() else None

    def create(self, name: str, body: str) -> str:
        existing = self.read(name)
        if existing is not None:
            return existing
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_private_file(path, body)
        return body

    def names(self, folder: str) -> list[str]:
        directory = self.root / folder
        return sorted(p.name for p in directory.iterdir() if p.is_file()) if directory.is_dir() else []

    def exclusive(self, name: str) -> AbstractContextManager[None]:
        return nullcontext()  # the data directory has one writing process (its store or chain lock)


class PostgresFiles:
    """SharedFiles in the ``shared_documents`` table of a PostgreSQL store (migrated already)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def read(self, name: str) -> str | None:
        with postgres.session(self.url) as pg:
            row = pg.execute("SELECT body FROM shared_documents WHERE name = %s", (name,)).fetchone()
        return str(row[0]) if row else None

    def create(self, name: str, body: str) -> str:
        with postgres.session(self.url) as pg:
            pg.execute(
                "INSERT INTO shared_documents (name, body, created_at) VALUES (%s, %s, %s) "
                "ON CONFLICT (name) DO NOTHING",
                (name, body, time.time()),
            )
            row = pg.execute("SELECT body FROM shared_documents WHERE name = %s", (name,)).fetchone()
        assert row is not None
        return str(row[0])

    def names(self, folder: str) -> list[str]:
        with postgres.session(self.url) as pg:
            rows = pg.execute(
                "SELECT substr(name, %s) FROM shared_documents WHERE starts_with(name, %s) ORDER BY name",
                (len(folder) + 1, folder),
            ).fetchall()
        return [str(r[0]) for r in rows if "/" not in str(r[0])]

    @contextlib.contextmanager
    def exclusive(self, name: str) -> Iterator[None]:
        key = postgres.advisory_key("document", name)
        with postgres.session(self.url) as pg:
            pg.execute("SELECT pg_advisory_lock(%s)", (key,))
            try:
                yield
            finally:
                with contextlib.suppress(psycopg.Error):
                    pg.execute("SELECT pg_advisory_unlock(%s)", (key,))


def adopt(local: DirectoryFiles, shared: SharedFiles) -> None:
    """Copy the data directory's keys and deployment record into the shared documents where absent
    (moving a one-process installation onto PostgreSQL keeps its keys and contracts)."""
    for name in local.names("keys"):
        if name.endswith(".json"):
            body = local.read(f"keys/{name}")
            if body is not None:
                shared.create(f"keys/{name}", body)
    deployment = local.read("deployment.json")
    if deployment is not None and shared.create("deployment.json", deployment) != deployment:
        raise DeploymentError(
            "the data directory's deployment.json names other contracts than the record "
            "shared by the replicas; remove the stale file"
        )


def write_private_file(path: Path, text: str) -> None:
    """Write a file readable only by its owner, atomically (a crash leaves the old file or none)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, text.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
