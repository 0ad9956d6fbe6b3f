"""Stored answers of requests made with an ``Idempotency-Key``, scoped to the calling app.

An answer older than the caller's time to live is as good as absent: it is never replayed, the
next request with its key replaces it (in the same submission as that request's rows), and
:func:`purge_statement` deletes all such answers now and then.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger.store.database import INTEGRITY_ERRORS, Connection
from ledger.store.intake import Statement

_INSERT = (
    "INSERT INTO idempotency_keys (app_id, key, request_hash, status_code, response, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
_DELETE_EXPIRED_KEY = "DELETE FROM idempotency_keys WHERE app_id = ? AND key = ? AND created_at < ?"
_DELETE_EXPIRED = "DELETE FROM idempotency_keys WHERE created_at < ?"


@dataclass(frozen=True)
class StoredAnswer:
    """The first answer given for a key, and the fingerprint of the request it answered."""

    request_hash: bytes
    status_code: int
    body: bytes


def stored_answer(conn: Connection, app_id: int, key: str, *, since: float) -> StoredAnswer | None:
    """The answer stored for the app's key at ``since`` (unix seconds) or later, or None."""
    row = conn.execute(
        "SELECT request_hash, status_code, response FROM idempotency_keys "
        "WHERE app_id = ? AND key = ? AND created_at >= ?",
        (app_id, key, since),
    ).fetchone()
    return StoredAnswer(bytes(row[0]), int(row[1]), bytes(row[2])) if row is not None else None


def answer_statements(
    app_id: int, key: str, request_hash: bytes, status_code: int, body: bytes, *, now: float, expired_before: float
) -> list[Statement]:
    """The statements storing an answer (written in the same submission as the request's rows):
    an expired answer of the same key is deleted first; a live one makes the insert fail, as a
    concurrent request with the same key does."""
    return [
        (_DELETE_EXPIRED_KEY, [(app_id, key, expired_before)]),
        (_INSERT, [(app_id, key, request_hash, status_code, body, now)]),
    ]


def purge_statement(expired_before: float) -> Statement:
    """The statement deleting every answer stored before ``expired_before``."""
    return _DELETE_EXPIRED, [(expired_before,)]


def is_key_taken(err: BaseException) -> bool:
    """The constraint a concurrent request with the same key broke."""
    return isinstance(err, INTEGRITY_ERRORS) and "idempotency_keys" in str(err)
