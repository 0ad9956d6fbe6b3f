"""CPU-heavy request work (strict JSON parsing, FHIR validation, canonical JSON and hashing of large
documents) in a few threads of its own, off the event loop.

Run on the loop, one large document holds up every other request, ``/healthz`` included, for as
long as it takes. In the pool it takes as long, but the loop keeps serving (the interpreter hands
the loop its turn between the worker's bytecodes), and at most ``workers`` such jobs run at once
however many arrive: the rest wait in the queue, holding only the bodies already read. The queue
is bounded too (``queue_limit`` jobs waiting or running): past it a large request is refused at
once with :class:`~ledger.exceptions.ServerBusyError` (503 ``server_busy``, ``Retry-After``), so a
flood of large bodies cannot pile up in memory. Small jobs are cheaper on the loop than a thread
hop, so callers say whether a job is large.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Final, ParamSpec, TypeVar

from ledger.exceptions import ServerBusyError

P = ParamSpec("P")
T = TypeVar("T")

INLINE_BYTES: Final = 64 * 1024
"""Bodies up to this size are parsed and hashed on the loop: a thread hop would cost more."""
QUEUED_PER_WORKER: Final = 8
"""Jobs queued or running per worker by default, before large requests are refused."""


class CpuPool:
    """A bounded pool for CPU-heavy request work.

    Args:
        workers: Most jobs running at once.
        queue_limit: Most jobs queued or running at once (default ``QUEUED_PER_WORKER`` per worker).
    """

    def __init__(self, workers: int, queue_limit: int | None = None) -> None:
        self.workers = workers
        self.queue_limit = queue_limit if queue_limit is not None else workers * QUEUED_PER_WORKER
        self._slots = threading.BoundedSemaphore(self.queue_limit)
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="careledger-cpu")

    async def run(self, large: bool, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)``, in the pool if ``large`` (else here, on the loop).

        Raises:
            ServerBusyError: ``queue_limit`` jobs are already queued or running.
        """
        if not large:
            return fn(*args, **kwargs)
        return await asyncio.wrap_future(self._submit(fn, *args, **kwargs))

    def call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)`` in the pool, waited for: for code already off the loop (a sync route).

        Raises:
            ServerBusyError: ``queue_limit`` jobs are already queued or running.
        """
        return self._submit(fn, *args, **kwargs).result()

    def _submit(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        if not self._slots.acquire(blocking=False):
            raise ServerBusyError(
                f"{self.queue_limit} large documents are already queued or being processed",
                queue_limit=self.queue_limit,
            )
        try:
            future = self._executor.submit(fn, *args, **kwargs)
        except BaseException:
            self._slots.release()
            raise
        future.add_done_callback(lambda _: self._slots.release())
        return future

    def close(self) -> None:
        """Refuse new jobs and drop queued ones; running ones finish on their own."""
        self._executor.shutdown(wait=False, cancel_futures=True)


def is_large(body: bytes) -> bool:
    """Whether a request body is worth a thread hop."""
    return len(body) > INLINE_BYTES
