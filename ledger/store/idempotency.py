"""Stored answers of requests made with an ``Idempotency-Key``, scoped to the calling app."""

from __future__ import annotations

import time
from dataclasses import dataclass

from ledger.store.database import INTEGRITY_ERRORS, Connection
from ledger.store.intake import Statement

_INSERT = (
    "INSERT INTO idempotency_keys (app_id, key, request_hash, status_code, response, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)


@dataclass(frozen=True)
class StoredAnswer:
    """The first answer given for a key, and the fingerprint of the request it answered."""

    request_hash: bytes
    status_code: int
    body: bytes


def stored_answer(conn: Connection, app_id: int, key: str) -> StoredAnswer | None:
    """The answer stored for the app's key, or None if the key is new."""
    row = conn.execute(
        "SELECT request_hash, status_code, response FROM idempotency_keys WHERE app_id = ? AND key = ?",
        (app_id, key),
    ).fetchone()
    return StoredAnswer(bytes(row[0]), int(row[1]), bytes(row[2])) if row is not None else None


def answer_statement(app_id: int, key: str, request_hash: bytes, status_code: int, body: bytes) -> Statement:
    """The statement storing an answer (written in the same submission as the request's records)."""
    return _INSERT, [(app_id, key, request_hash, status_code, body, time.time())]


def is_key_taken(err: BaseException) -> bool:
    """The constraint a concurrent request with the same key broke."""
    return isinstance(err, INTEGRITY_ERRORS) and "idempotency_keys" in str(err)
