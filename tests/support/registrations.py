"""Registering records with a served process (`careledger serve`): one at a time, under load from
threads, and reading their receipts back.

:class:`RegistrationLoad` keeps every answer: the acknowledged records with their digests, each
refusal with its status and ``code``, and every other failure (a transport error from a process the
test did not declare gone, an exception in a thread). The test then says which refusals its
scenario allows, so nothing under load is silently ignored.
"""

from __future__ import annotations

import os
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

import httpx

from ledger.records.receipts import Receipt
from tests.support.processes import wait_until

RECEIPT_WAIT_SECONDS = 30


def new_digest() -> str:
    """A random SHA-256-sized digest, as the API takes it."""
    return "0x" + os.urandom(32).hex()


def register(base: str, headers: dict[str, str], patient: str) -> tuple[str, str]:
    """Register one digest-only record (it must be acknowledged); return its id and digest."""
    digest = new_digest()
    response = httpx.post(
        f"{base}/v1/records", json={"patient": patient, "digest": digest}, headers=headers, timeout=30
    )
    assert response.status_code == 202, response.text
    record_id: str = response.json()["recordId"]
    return record_id, digest


def fetch_receipt(base: str, headers: dict[str, str], record_id: str) -> Receipt:
    """The record's receipt, waiting for its batch to be anchored (it must be, in time)."""
    response = httpx.get(
        f"{base}/v1/records/{record_id}/receipt",
        params={"wait": "true", "timeout": RECEIPT_WAIT_SECONDS},
        headers=headers,
        timeout=RECEIPT_WAIT_SECONDS * 2,
    )
    assert response.status_code == 200, (record_id, response.status_code, response.text)
    return Receipt.parse(response.json())


def fetch_receipts(base: str, headers: dict[str, str], record_ids: list[str]) -> list[Receipt]:
    """:func:`fetch_receipt` for each id, over one connection."""
    receipts = []
    with httpx.Client(base_url=base, headers=headers, timeout=RECEIPT_WAIT_SECONDS * 2) as http:
        for record_id in record_ids:
            response = http.get(
                f"/v1/records/{record_id}/receipt", params={"wait": "true", "timeout": RECEIPT_WAIT_SECONDS}
            )
            assert response.status_code == 200, (record_id, response.status_code, response.text)
            receipts.append(Receipt.parse(response.json()))
    return receipts


@dataclass(frozen=True)
class Refusal:
    """A registration answered with something other than 202.

    Attributes:
        status: The HTTP status.
        code: The error body's ``code`` (``""`` if the body was not the API's error shape).
        base: The process that answered.
        digest: The digest the refused request carried (it must not be stored).
        sent_at: ``time.monotonic()`` when the request was sent.
        answered_at: ``time.monotonic()`` when the answer arrived.
    """

    status: int
    code: str
    base: str
    digest: str
    sent_at: float
    answered_at: float


def _error_code(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    return str(body.get("code", "")) if isinstance(body, dict) else ""


class RegistrationLoad:
    """Worker threads registering digest-only records until stopped, as behind a load balancer.

    Worker ``i`` sends to ``bases`` in turn, starting at ``bases[i % len(bases)]``. A transport error
    from a base the test declared gone (:meth:`declare_gone`, before it kills that process) drops
    the base from that worker; from any other base it is an error. A worker with no base left stops.

    Args:
        bases: Base URLs of the processes to load.
        headers: The registrar's auth headers.
        patient: The patient address of every record.
        workers: Threads.
        timeout: Seconds a request may take before it counts as a transport error.
    """

    def __init__(
        self, bases: list[str], headers: dict[str, str], patient: str, *, workers: int = 8, timeout: float = 10
    ) -> None:
        self.bases = list(bases)
        self.headers = headers
        self.patient = patient
        self.timeout = timeout
        self.acknowledged: list[tuple[str, str]] = []
        """``(record id, digest)`` of every 202, in the order the answers arrived."""
        self.refused: list[Refusal] = []
        self.errors: list[str] = []
        """What went wrong besides refusals: unexpected transport errors, exceptions in a thread."""
        self._gone: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(i,), name=f"registration-load-{i}", daemon=True)
            for i in range(workers)
        ]

    def __enter__(self) -> RegistrationLoad:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 60) -> None:
        """Stop every worker after its request in flight; a worker that does not stop is an error."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
            if thread.is_alive():
                with self._lock:
                    self.errors.append(f"{thread.name} did not stop within {timeout} s")

    def declare_gone(self, base: str) -> None:
        """The test is about to kill ``base``: transport errors from it are expected from now on."""
        with self._lock:
            self._gone.add(base)

    def count(self) -> int:
        with self._lock:
            return len(self.acknowledged)

    def refusals(self) -> int:
        with self._lock:
            return len(self.refused)

    def wait_for(self, acknowledged: int, timeout: float, what: str) -> None:
        """Wait until ``acknowledged`` registrations in all were acknowledged; fail early on an error."""
        wait_until(self._unless_failed(lambda: self.count() >= acknowledged), timeout, what)

    def wait_for_refusals(self, refusals: int, timeout: float, what: str) -> None:
        """Wait until ``refusals`` registrations in all were refused; fail early on an error."""
        wait_until(self._unless_failed(lambda: self.refusals() >= refusals), timeout, what)

    def _unless_failed(self, done: Callable[[], bool]) -> Callable[[], bool]:
        """``done``, checked only while no worker has failed (a failure ends the wait at once)."""

        def check() -> bool:
            with self._lock:
                assert not self.errors, self.errors
            return done()

        return check

    def _run(self, worker: int) -> None:
        try:
            self._register_until_stopped(worker)
        except BaseException:  # any failure in a thread must reach the test
            with self._lock:
                self.errors.append(f"worker {worker}: {traceback.format_exc()}")

    def _register_until_stopped(self, worker: int) -> None:
        start = worker % len(self.bases)
        bases = self.bases[start:] + self.bases[:start]
        with httpx.Client(headers=self.headers, timeout=self.timeout) as http:
            while bases and not self._stop.is_set():
                for base in list(bases):
                    if self._stop.is_set():
                        return
                    self._register_once(http, base, bases)

    def _register_once(self, http: httpx.Client, base: str, bases: list[str]) -> None:
        digest = new_digest()
        sent_at = time.monotonic()
        try:
            response = http.post(f"{base}/v1/records", json={"patient": self.patient, "digest": digest})
        except httpx.TransportError as err:
            with self._lock:
                if base not in self._gone:
                    self.errors.append(f"{base} failed without being declared gone: {err!r}")
            bases.remove(base)
            return
        with self._lock:
            if response.status_code == 202:
                self.acknowledged.append((response.json()["recordId"], digest))
            else:
                self.refused.append(
                    Refusal(response.status_code, _error_code(response), base, digest, sent_at, time.monotonic())
                )
