"""Durable acknowledgement by group commit.

A request that writes (a registration, an access-log entry) hands its statements to :class:`Intake`
and awaits; one writer task on the event loop commits everything that arrived meanwhile in ONE
database transaction (SQLite: WAL, ``synchronous=FULL``), then resolves every waiting request. A response is
sent only after its rows are on disk, so an acknowledged record survives ``kill -9`` the next
instant, at the cost of one fsync per group rather than per request.

A submission that violates a constraint (an ``Idempotency-Key`` already used) fails alone, and
nothing of it is written: the group is then written again with each submission in a savepoint.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ledger.exceptions import InputError
from ledger.store.database import STATEMENT_ERRORS, Connection, Database, rollback

Statement = tuple[str, Sequence[Sequence[Any]]]
SUBMISSION_ERRORS: tuple[type[Exception], ...] = (*STATEMENT_ERRORS, InputError)
"""What fails one submission alone: a broken constraint, or a value the database cannot store."""


@dataclass
class _Submission:
    statements: list[Statement]
    future: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class Intake:
    """Group-commits submissions on the running event loop.

    Args:
        db: The store (its connection for the loop's thread is used).
        on_committed: Called after each group commit (e.g. to wake the batcher).
    """

    def __init__(self, db: Database, on_committed: Callable[[int], None] | None = None) -> None:
        self.db = db
        self.on_committed = on_committed
        self._queue: list[_Submission] = []
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self.groups_committed = 0
        self.submissions_committed = 0

    def start(self) -> None:
        """Start the writer task on the running loop."""
        self._wakeup = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._writer(), name="careledger-intake")

    async def stop(self) -> None:
        """Commit what is queued, then stop."""
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        if self._queue:
            self._commit(self._take())

    async def submit(self, statements: list[Statement]) -> None:
        """Write ``statements`` durably; returns once they are committed, raises if they were not."""
        if self._wakeup is None:
            raise RuntimeError("intake not started")
        submission = _Submission(statements)
        self._queue.append(submission)
        self._wakeup.set()
        await submission.future

    def _take(self) -> list[_Submission]:
        taken, self._queue = self._queue, []
        return taken

    async def _writer(self) -> None:
        assert self._wakeup is not None
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            # let every request that is ready this loop iteration join the group
            await asyncio.sleep(0)
            if self._queue:
                self._commit(self._take())

    def _commit(self, group: list[_Submission]) -> None:
        conn = self.db.conn
        try:
            failed = self._write(conn, group)
        except BaseException as err:
            rollback(conn)
            for submission in group:
                if not submission.future.done():
                    submission.future.set_exception(err)
            return
        self.groups_committed += 1
        for index, submission in enumerate(group):
            if submission.future.done():
                continue
            if index in failed:
                submission.future.set_exception(failed[index])
            else:
                submission.future.set_result(None)
        committed = len(group) - len(failed)
        self.submissions_committed += committed
        if self.on_committed is not None and committed:
            self.on_committed(committed)

    @staticmethod
    def _write(conn: Connection, group: list[_Submission]) -> dict[int, BaseException]:
        """Write the group in one transaction; returns the submissions that failed, by position.

        The whole group is tried first without savepoints and with the rows of each kind of
        statement sent together (on PostgreSQL every statement is a round trip that holds up the
        event loop; failures are rare: a reused ``Idempotency-Key``); if a statement fails, the
        group is rolled back and written again with each submission in a savepoint of its own.
        """
        conn.execute("BEGIN IMMEDIATE")
        try:
            for sql, rows in _merged(group):
                conn.executemany(sql, rows)
        except SUBMISSION_ERRORS as err:
            rollback(conn)
            if len(group) == 1:
                return {0: err}
            return Intake._write_isolated(conn, group)
        conn.execute("COMMIT")
        return {}

    @staticmethod
    def _write_isolated(conn: Connection, group: list[_Submission]) -> dict[int, BaseException]:
        failed: dict[int, BaseException] = {}
        conn.execute("BEGIN IMMEDIATE")
        for index, submission in enumerate(group):
            conn.execute("SAVEPOINT submission")
            try:
                for sql, rows in submission.statements:
                    conn.executemany(sql, rows)
            except SUBMISSION_ERRORS as err:
                conn.execute("ROLLBACK TO submission")
                failed[index] = err
            conn.execute("RELEASE submission")
        conn.execute("COMMIT")
        return failed


def _merged(group: list[_Submission]) -> list[Statement]:
    """The group's statements with the rows of the same SQL joined, in an order that keeps every
    submission's own order (a record before the access-log row that names it); the statements one
    after the other if no such order exists."""
    order: dict[str, int] = {}
    for submission in group:
        for sql, _ in submission.statements:
            order.setdefault(sql, len(order))
    rows: list[list[Sequence[Any]]] = [[] for _ in order]
    for submission in group:
        positions = [order[sql] for sql, _ in submission.statements]
        if positions != sorted(positions) or len(set(positions)) != len(positions):
            return [statement for each in group for statement in each.statements]
        for sql, statement_rows in submission.statements:
            rows[order[sql]].extend(statement_rows)
    return list(zip(order, rows, strict=True))
