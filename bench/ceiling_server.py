"""The bare ceiling for bench/api_load.py: durable record intake and nothing else.

FastAPI with a pydantic body, an API-key check and group commit into SQLite WAL with
synchronous=FULL (requests wait on a future; one writer on the event loop commits every waiting
row in one transaction), on one uvicorn worker like ``careledger serve``. No salts, no batcher,
no chain: what this machine allows a Python service that acknowledges durably.

    .venv/bin/python bench/ceiling_server.py --port 8001 --db /tmp/ceiling.sqlite3 --key KEY
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import sqlite3
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated

import uvicorn
from fastapi import Depends, FastAPI, Header, HTTPException
from pydantic import BaseModel, Field

Row = tuple[str, str, str]


class RecordIn(BaseModel):
    patient: str = Field(pattern=r"^0x[0-9a-fA-F]{40}$")
    digest: str = Field(pattern=r"^0x[0-9a-fA-F]{64}$")


class RecordsIn(BaseModel):
    records: list[RecordIn] = Field(min_length=1, max_length=100_000)


class GroupCommit:
    """Rows wait on a future until one transaction on the event loop has committed them."""

    def __init__(self, path: str) -> None:
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("PRAGMA busy_timeout=10000")
        self.db.execute("CREATE TABLE IF NOT EXISTS records (id TEXT PRIMARY KEY, patient TEXT, digest TEXT)")
        self.waiting: list[tuple[list[Row], asyncio.Future[None]]] = []
        self.wake = asyncio.Event()
        self.acknowledged = 0

    async def add(self, rows: list[Row]) -> None:
        done = asyncio.get_running_loop().create_future()
        self.waiting.append((rows, done))
        self.wake.set()
        await done

    async def run(self) -> None:
        while True:
            await self.wake.wait()
            await asyncio.sleep(0)  # let requests already read join this commit
            self.wake.clear()
            batch, self.waiting = self.waiting, []
            try:
                with self.db:  # BEGIN ... COMMIT (ROLLBACK on error)
                    self.db.execute("BEGIN")
                    self.db.executemany(
                        "INSERT INTO records (id, patient, digest) VALUES (?, ?, ?)",
                        [r for rows, _ in batch for r in rows],
                    )
            except sqlite3.Error as err:
                for _, done in batch:
                    done.set_exception(err)
                continue
            self.acknowledged += sum(len(rows) for rows, _ in batch)
            for _, done in batch:
                done.set_result(None)


Background = Callable[[GroupCommit], Callable[[], None]]


def create_app(db_path: str, api_key: str, background: Background | None = None) -> FastAPI:
    """The ceiling app; ``background(intake)``, if given, starts with it and returns its stop function."""
    expected = f"Bearer {api_key}".encode()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        intake = app.state.intake = GroupCommit(db_path)
        writer = asyncio.create_task(intake.run())
        stop = background(intake) if background is not None else None
        yield
        if stop is not None:
            stop()
        writer.cancel()

    def caller(authorization: Annotated[str, Header()] = "") -> None:
        if not hmac.compare_digest(authorization.encode(), expected):
            raise HTTPException(401, "bad API key")

    app = FastAPI(lifespan=lifespan, dependencies=[Depends(caller)])

    @app.post("/v1/records", status_code=202)
    async def register(body: RecordIn) -> dict[str, str]:
        record_id = uuid.uuid4().hex
        await app.state.intake.add([(record_id, body.patient, body.digest)])
        return {"recordId": record_id, "digest": body.digest, "status": "pending"}

    @app.post("/v1/records/bulk", status_code=202)
    async def register_many(body: RecordsIn) -> dict[str, object]:
        rows = [(uuid.uuid4().hex, r.patient, r.digest) for r in body.records]
        await app.state.intake.add(rows)
        return {"records": [{"recordId": i, "digest": d, "status": "pending"} for i, _, d in rows], "count": len(rows)}

    return app


def serve(app: FastAPI, port: int) -> None:
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def arguments(description: str) -> argparse.ArgumentParser:
    """The options every bench server takes: where to listen, its SQLite file and its API key."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--key", required=True)
    return parser


def main() -> None:
    args = arguments(__doc__.splitlines()[0]).parse_args()
    serve(create_app(args.db, args.key), args.port)


if __name__ == "__main__":
    main()
