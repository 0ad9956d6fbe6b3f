"""In-memory rate limits: a token bucket per key (a client IP, a patient address).

Used on the patient endpoints, whose writes need no API key but cost the relayer gas. The buckets
live in one process: behind several workers or replicas each keeps its own count, so the effective
limit is multiplied by their number (good enough to stop a runaway client, not a distributed quota).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from starlette.requests import Request

from ledger.exceptions import RateLimitedError

T = TypeVar("T")


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """At most ``capacity`` requests per key in a burst, refilled evenly over ``window`` seconds.

    Args:
        capacity: The burst size, and how many requests a key gets back per ``window``.
        window: Seconds for an empty bucket to fill up again.
        what: What a key is, for the error message ("client", "patient").
        max_keys: Keys tracked at most; full buckets are dropped first when over it.
    """

    def __init__(self, capacity: int, window: float, what: str, max_keys: int = 100_000) -> None:
        if capacity < 1 or window <= 0:
            raise ValueError("capacity must be at least 1 and window positive")
        self.capacity = float(capacity)
        self.rate = capacity / window
        self.what = what
        self.max_keys = max_keys
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, key: str, now: float | None = None) -> None:
        """Spend one request of ``key``'s budget, or raise :class:`RateLimitedError` (nothing spent)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                if len(self._buckets) >= self.max_keys:
                    self._prune(now)
                bucket = self._buckets[key] = _Bucket(self.capacity, now)
            bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
            if bucket.tokens < 1:
                retry_after = max(1, math.ceil((1 - bucket.tokens) / self.rate))
                raise RateLimitedError(
                    f"too many requests for this {self.what}; retry in {retry_after} s",
                    retry_after=retry_after,
                    limit=int(self.capacity),
                )
            bucket.tokens -= 1

    def _prune(self, now: float) -> None:
        full = [k for k, b in self._buckets.items() if b.tokens + (now - b.updated) * self.rate >= self.capacity]
        for key in full:
            del self._buckets[key]
        if len(self._buckets) >= self.max_keys:  # all busy: forget the stalest
            stalest = sorted(self._buckets, key=lambda k: self._buckets[k].updated)[: len(self._buckets) // 2]
            for key in stalest:
                del self._buckets[key]


def app_limits(request: Request, name: str, make: Callable[[], T]) -> T:
    """The app's limits kept as ``app.state.<name>``, made by ``make`` on first use (tests may set them)."""
    state: Any = request.app.state
    limits: T | None = getattr(state, name, None)
    if limits is None:
        limits = make()
        setattr(state, name, limits)
    return limits


def client_address(request: Request) -> str:
    """The client a per-client limit counts: the peer, or behind a trusted proxy the address it forwarded."""
    return request.client.host if request.client else "unknown"
