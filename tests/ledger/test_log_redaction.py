"""The RPC URL and the database URL never reach a log record: message, arguments or traceback."""

from __future__ import annotations

import io
import logging

from api.log_redaction import REDACTED, SecretRedactor, secrets_of
from ledger.config import Settings

RPC = "https://node.example/v3/7f3a-secret-token?key=abc%20def"
DATABASE = "postgresql://careledger:hunter2-pw@db.internal/ledger"


def test_each_secret_part_of_the_urls_is_known(tmp_path: object) -> None:
    settings = Settings(rpc_url=RPC, keystore_passphrase="x", database_url=DATABASE)
    found = secrets_of(settings)
    assert {RPC, DATABASE, "/v3/7f3a-secret-token", "key=abc%20def", "key=abc def", "hunter2-pw"} <= set(found)
    assert "/" not in found and "/ledger" in found
    assert secrets_of(Settings()) == []  # the embedded chain: nothing to hide


def test_messages_arguments_and_tracebacks_are_redacted() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(SecretRedactor(secrets_of(Settings(rpc_url=RPC, keystore_passphrase="x"))))
    log = logging.getLogger("tests.redaction")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("cannot reach %s", RPC)
        try:
            raise ConnectionError(f"Max retries exceeded with url: /v3/7f3a-secret-token?key=abc%20def ({RPC})")
        except ConnectionError:
            log.exception("chain unreachable")
    finally:
        log.removeHandler(handler)
    text = stream.getvalue()
    assert "7f3a-secret-token" not in text and "abc%20def" not in text
    assert text.count(REDACTED) >= 3 and "ConnectionError: Max retries exceeded with url: ***" in text
