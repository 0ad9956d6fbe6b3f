"""Secrets kept out of log records: the RPC URL (a node provider's token is often in its path or
query) and the database URL (its password).

Errors from web3, requests and psycopg quote the URL they failed on, in their message and in their
traceback. :class:`SecretRedactor` is a logging filter that formats each record passing through a
handler (message, arguments and traceback) and replaces every secret in it with ``***``;
:func:`install` puts it on every handler configured so far (the root logger's and uvicorn's).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Final
from urllib.parse import unquote, urlsplit

from ledger.config import Settings

REDACTED: Final = "***"
_MIN_SECRET_LENGTH: Final = 4
"""Shorter parts (a path of ``/``, a one-letter password) are left alone: they would blank out
ordinary text, and reveal nothing."""


def secrets_of(settings: Settings) -> list[str]:
    """The texts to keep out of logs: each URL whole, and the parts of it that carry a secret
    (user information, password, path, query), as written and percent-decoded."""
    urls = [settings.rpc_url_text or ""]
    if settings.database_url is not None:
        urls.append(settings.database_url.get_secret_value())
    found: set[str] = set()
    for url in filter(None, urls):
        found.add(url)
        parts = urlsplit(url)
        for part in (parts.netloc.rpartition("@")[0], parts.password, parts.path, parts.query):
            if part:
                found.update((part, unquote(part)))
    return sorted((s for s in found if len(s) >= _MIN_SECRET_LENGTH), key=len, reverse=True)


class SecretRedactor(logging.Filter):
    """Replace secrets in each record's message and traceback (the longest first)."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__("careledger.redaction")
        self.secrets = sorted(set(secrets), key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        record.msg, record.args = self.redact(record.getMessage()), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


def install(settings: Settings, loggers: Iterable[str] = ("", "uvicorn", "uvicorn.error", "uvicorn.access")) -> None:
    """Put a :class:`SecretRedactor` for ``settings`` on every handler of ``loggers`` (once each)."""
    redactor = SecretRedactor(secrets_of(settings))
    for name in loggers:
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(f, SecretRedactor) for f in handler.filters):
                handler.addFilter(redactor)
