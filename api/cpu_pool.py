"""CPU-heavy request work (strict JSON parsing, FHIR validation, canonical JSON and hashing of large
documents) in a few threads of its own, off the event loop.

Run on the loop, one large document holds up every other request, ``/healthz`` included, for as
long as it takes. In the pool it takes as long, but the loop keeps serving (the interpreter hands
the loop its turn between the worker's bytecodes), and at most ``workers`` such jobs run at once
however many arrive: the rest wait in the queue, holding only the bodies already read. Small jobs
are cheaper on the loop than a thread hop, so callers say whether a job is large.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Final, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

INLINE_BYTES: Final = 64 * 1024
"""Bodies up to this size are parsed and hashed on the loop: a thread hop would cost more."""


class CpuPool:
    """A bounded pool for CPU-heavy request work.

    Args:
        workers: Most jobs running at once.
    """

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="careledger-cpu")

    async def run(self, large: bool, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)``, in the pool if ``large`` (else here, on the loop)."""
        if not large:
            return fn(*args, **kwargs)
        return await asyncio.wrap_future(self._executor.submit(fn, *args, **kwargs))

    def call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)`` in the pool, waited for: for code already off the loop (a sync route)."""
        return self._executor.submit(fn, *args, **kwargs).result()

    def close(self) -> None:
        """Refuse new jobs and drop queued ones; running ones finish on their own."""
        self._executor.shutdown(wait=False, cancel_futures=True)


def is_large(body: bytes) -> bool:
    """Whether a request body is worth a thread hop."""
    return len(body) > INLINE_BYTES
