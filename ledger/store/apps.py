"""Organisations (each with its own chain account) and the apps that call the API for them.

API keys are random 256-bit tokens shown once at creation; only their SHA-256 is stored, so a copy of
the database does not let anyone call the API. (A slow password hash is unnecessary: the keys are
not guessable, and the lookup by hash must stay fast on every request.)
"""

from __future__ import annotations

import enum
import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any

from ledger.exceptions import DuplicateError, InputError, NotFoundError
from ledger.store.database import INTEGRITY_ERRORS, Connection, with_tx
from ledger.store.postal_addresses import PostalAddress, postal_address_text, stored_postal_address

API_KEY_PREFIX = "clk_"


class Role(enum.StrEnum):
    """What an app may do. ``emergency`` allows break-glass access (its organisation must hold
    ``EMERGENCY_ROLE`` on chain); ``relayer`` relays patient-signed consent changes through the
    organisation routes (the service's relayer pays their gas, so they are budgeted)."""

    REGISTRAR = "registrar"
    READER = "reader"
    ADMIN = "admin"
    EMERGENCY = "emergency"
    RELAYER = "relayer"


@dataclass(frozen=True)
class Organisation:
    """An organisation: its name, the keystore name and address of its chain account, its break-glass
    right, and the postal address it registered (None if none)."""

    id: int
    name: str
    key_name: str
    address: str
    emergency: bool
    created_at: int
    postal_address: PostalAddress | None = None


@dataclass(frozen=True)
class App:
    id: int
    organisation_id: int
    name: str
    key_prefix: str
    roles: frozenset[Role]
    created_at: int
    revoked_at: int | None


_ORG_COLUMNS = "id, name, key_name, address, emergency, created_at, postal_address"
_APP_COLUMN_NAMES = ("id", "organisation_id", "name", "key_prefix", "roles", "created_at", "revoked_at")
_APP_COLUMNS = ", ".join(_APP_COLUMN_NAMES)


def _org(row: Any) -> Organisation:
    id_, name, key_name, address, emergency, created_at, postal = row
    return Organisation(id_, name, key_name, address, bool(emergency), created_at, stored_postal_address(postal))


def app_columns(table: str) -> str:
    """The columns :func:`app_from_row` reads, of ``table`` (an alias of ``apps`` in a join)."""
    return ", ".join(f"{table}.{name}" for name in _APP_COLUMN_NAMES)


def app_from_row(row: Any) -> App:
    """The app in the first columns of ``row`` (:func:`app_columns`, in that order)."""
    id_, org, name, prefix, roles, created_at, revoked_at = row[: len(_APP_COLUMN_NAMES)]
    return App(id_, org, name, prefix, frozenset(Role(r) for r in roles.split(",") if r), created_at, revoked_at)


def hash_api_key(api_key: str) -> bytes:
    return hashlib.sha256(api_key.encode("utf-8")).digest()


def create_organisation(
    conn: Connection,
    name: str,
    key_name: str,
    address: str,
    emergency: bool = False,
    postal_address: PostalAddress | None = None,
) -> Organisation:
    def insert() -> int:
        try:
            cursor = conn.execute(
                "INSERT INTO organisations (name, key_name, address, emergency, created_at, postal_address) "
                "VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                (name, key_name, address, int(emergency), int(time.time()), postal_address_text(postal_address)),
            )
            return int(cursor.fetchone()[0])
        except INTEGRITY_ERRORS as err:
            raise DuplicateError(f"organisation {name!r} already exists", name=name) from err

    return get_organisation(conn, with_tx(conn, insert))


def set_emergency(conn: Connection, organisation_id: int, emergency: bool) -> None:
    with_tx(
        conn,
        lambda: conn.execute("UPDATE organisations SET emergency = ? WHERE id = ?", (int(emergency), organisation_id)),
    )


def get_organisation(conn: Connection, organisation_id: int) -> Organisation:
    row = conn.execute(f"SELECT {_ORG_COLUMNS} FROM organisations WHERE id = ?", (organisation_id,)).fetchone()
    if row is None:
        raise NotFoundError(f"no organisation {organisation_id}", organisation=organisation_id)
    return _org(row)


def organisation_by_name(conn: Connection, name: str) -> Organisation | None:
    row = conn.execute(f"SELECT {_ORG_COLUMNS} FROM organisations WHERE name = ?", (name,)).fetchone()
    return _org(row) if row else None


def organisation_by_address(conn: Connection, address: str) -> Organisation | None:
    row = conn.execute(f"SELECT {_ORG_COLUMNS} FROM organisations WHERE address = ?", (address,)).fetchone()
    return _org(row) if row else None


def list_organisations(conn: Connection) -> list[Organisation]:
    return [_org(r) for r in conn.execute(f"SELECT {_ORG_COLUMNS} FROM organisations ORDER BY id")]


def create_app(conn: Connection, organisation_id: int, name: str, roles: set[Role]) -> tuple[App, str]:
    """Create an app; returns it and its API key, which is never retrievable again."""
    if not roles:
        raise InputError("an app needs at least one role", field="roles")
    get_organisation(conn, organisation_id)
    api_key = API_KEY_PREFIX + secrets.token_urlsafe(32)

    def insert() -> int:
        cursor = conn.execute(
            "INSERT INTO apps (organisation_id, name, key_hash, key_prefix, roles, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
            (
                organisation_id,
                name,
                hash_api_key(api_key),
                api_key[:10],
                ",".join(sorted(r.value for r in roles)),
                int(time.time()),
            ),
        )
        return int(cursor.fetchone()[0])

    return get_app(conn, with_tx(conn, insert)), api_key


def get_app(conn: Connection, app_id: int) -> App:
    row = conn.execute(f"SELECT {_APP_COLUMNS} FROM apps WHERE id = ?", (app_id,)).fetchone()
    if row is None:
        raise NotFoundError(f"no app {app_id}", app=app_id)
    return app_from_row(row)


def list_apps(conn: Connection, organisation_id: int | None = None) -> list[App]:
    if organisation_id is None:
        rows = conn.execute(f"SELECT {_APP_COLUMNS} FROM apps ORDER BY id")
    else:
        rows = conn.execute(
            f"SELECT {_APP_COLUMNS} FROM apps WHERE organisation_id = ? ORDER BY id", (organisation_id,)
        )
    return [app_from_row(r) for r in rows]


def revoke_app(conn: Connection, app_id: int) -> App:
    get_app(conn, app_id)
    with_tx(
        conn,
        lambda: conn.execute(
            "UPDATE apps SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (int(time.time()), app_id)
        ),
    )
    return get_app(conn, app_id)


class AppKeyCache:
    """Recently seen API keys -> apps, for at most ``ttl`` seconds.

    Every request is authenticated; a short cache keeps the lookup off the hot path (one store read
    per key and process per ``ttl`` at most). A revocation in this process clears the cache at once;
    in another replica it takes effect within ``ttl``: one second by default.
    """

    def __init__(self, ttl: float = 1.0, size: int = 10_000) -> None:
        self.ttl = ttl
        self.size = size
        self._entries: dict[bytes, tuple[App | None, float]] = {}

    def lookup(self, conn: Connection, api_key: str) -> App | None:
        key_hash = hash_api_key(api_key)
        now = time.monotonic()
        cached = self._entries.get(key_hash)
        if cached is not None and cached[1] > now:
            return cached[0]
        row = conn.execute(
            f"SELECT {_APP_COLUMNS} FROM apps WHERE key_hash = ? AND revoked_at IS NULL", (key_hash,)
        ).fetchone()
        app = app_from_row(row) if row else None
        if len(self._entries) >= self.size:
            self._entries.clear()
        self._entries[key_hash] = (app, now + self.ttl)
        return app

    def clear(self) -> None:
        self._entries.clear()
