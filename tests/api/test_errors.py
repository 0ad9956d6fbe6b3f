"""The one error table: 5xx bodies are fixed sentences naming the failure's class, never its text."""

from __future__ import annotations

import orjson
import pytest

from api.errors import response_for
from ledger.exceptions import (
    ChainError,
    ChainUnavailableError,
    IdempotencyKeyReusedError,
    IntegrityError,
    LedgerError,
    StoreUnavailableError,
    TransactionTimeoutError,
)

SECRET = "http://node.example/v3/tok-123 postgresql://u:pw@db.internal/ledger"


@pytest.mark.parametrize(
    ("error", "status", "message"),
    [
        (
            ChainUnavailableError(f"chain unreachable: {SECRET}", url=SECRET),
            503,
            "the chain is unavailable; retry later",
        ),
        (StoreUnavailableError(f"database unreachable: {SECRET}"), 503, "the database is unavailable; retry later"),
        (TransactionTimeoutError(f"not mined: {SECRET}"), 502, "the chain refused or failed the request"),
        (ChainError(SECRET), 502, "the chain refused or failed the request"),
        (IntegrityError(SECRET), 500, "internal error"),
        (LedgerError(SECRET), 500, "internal error"),
    ],
)
def test_server_failures_say_only_their_class(error: LedgerError, status: int, message: str) -> None:
    response = response_for(error)
    body = orjson.loads(response.body)
    assert response.status_code == status and body["code"] == error.code
    assert body["message"].startswith(message) and body["details"] == {}
    assert "tok-123" not in response.body.decode() and "db.internal" not in response.body.decode()


def test_a_reused_idempotency_key_is_422() -> None:
    response = response_for(IdempotencyKeyReusedError("used for another request", idempotency_key="k"))
    assert response.status_code == 422 and orjson.loads(response.body)["code"] == "idempotency_key_reused"
