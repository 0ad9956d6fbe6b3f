"""The FHIR Consent store on both backends (issue 15): Consents kept before the pending migration
survive it; a signed Consent is kept once, pending, then completed; only a pending row is ever
dropped; and a granted row without its grant cannot be written."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger.store import database, postgres
from ledger.store.database import INTEGRITY_ERRORS, Database, open_database
from ledger.store.fhir_consents import (
    PendingConsent,
    StoredConsent,
    complete_consent,
    drop_pending,
    find_consents,
    find_pending,
    get_consent,
    keep_pending,
    pending_consent,
    signed_consent,
)

PATIENT, GRANTEE = "0x" + "aa" * 20, "0x" + "bb" * 20
PENDING_MIGRATION = {"sqlite": 14, "postgres": 12}
"""The migration that made Consents pending first, per backend."""
OLD_ROW = (
    "INSERT INTO fhir_consents (id, patient, grantee, terms, document, version, grant_tx, grant_block, "
    "revoke_tx, revoke_block, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 1, ?, 7, NULL, NULL, 1.0, 1.0)"
)


@pytest.fixture(params=["sqlite", "postgres"])
def migrated(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    """A store that kept one Consent (``old``) before the pending migration, then migrated to now."""
    module = database if request.param == "sqlite" else postgres
    url = None if request.param == "sqlite" else request.getfixturevalue("database_url")
    shipped = module.migrations()
    before = [m for m in shipped if m[0] < PENDING_MIGRATION[request.param]]
    assert len(before) < len(shipped)
    with monkeypatch.context() as patched:
        patched.setattr(module, "migrations", lambda: before)
        old = open_database(tmp_path, url=url)
        old.conn.execute(OLD_ROW, ("old", PATIENT, GRANTEE, b"\x01" * 32, "{}", "0x" + "cd" * 32))
        if old.conn.in_transaction:
            old.conn.execute("COMMIT")
        old.close()
    store = open_database(tmp_path, url=url)
    yield store
    store.close()


def pending(consent_id: str, terms: bytes, signature: bytes = b"\x05" * 65, created: float = 2.0) -> PendingConsent:
    return PendingConsent(consent_id, PATIENT, GRANTEE, terms, "{}", signature, 2_000_000_000, 3, created)


def test_consents_kept_before_the_migration_survive_it(migrated: Database) -> None:
    old = get_consent(migrated.conn, "old")
    assert old is not None and (old.grant_tx, old.grant_block, old.terms) == ("0x" + "cd" * 32, 7, b"\x01" * 32)
    assert [c.id for c in find_consents(migrated.conn, patient=PATIENT)] == ["old"]
    assert find_pending(migrated.conn, patient=PATIENT) == []


def test_a_signed_consent_is_kept_once_pending_then_completed(migrated: Database) -> None:
    conn = migrated.conn
    terms = os.urandom(32)
    first = keep_pending(conn, pending("first", terms))
    assert first == pending("first", terms)
    assert keep_pending(conn, pending("second", terms)) == first  # the same terms and signature: the same row
    other = keep_pending(conn, pending("other", terms, b"\x06" * 65, created=3.0))  # the same terms signed again
    assert isinstance(other, PendingConsent) and other.id == "other"
    assert get_consent(conn, "first") is None and pending_consent(conn, "first") == first
    assert [p.id for p in find_pending(conn, grantee=GRANTEE)] == ["first", "other"]  # oldest first

    complete_consent(conn, "first", "0x" + "ab" * 32, 9, 5.0)
    granted = signed_consent(conn, terms, b"\x05" * 65)
    assert isinstance(granted, StoredConsent) and (granted.grant_tx, granted.grant_block) == ("0x" + "ab" * 32, 9)
    complete_consent(conn, "first", "0x" + "ef" * 32, 10, 6.0)  # completed once: a second completion changes nothing
    assert get_consent(conn, "first") == granted
    drop_pending(conn, "first")  # only pending rows are dropped
    assert get_consent(conn, "first") == granted
    drop_pending(conn, "other")
    assert signed_consent(conn, terms, b"\x06" * 65) is None
    assert [c.id for c in find_consents(conn, patient=PATIENT, after=(1.0, "old"))] == ["first"]


def test_a_granted_row_without_its_grant_is_refused(migrated: Database) -> None:
    with pytest.raises(INTEGRITY_ERRORS):
        migrated.conn.execute(
            "INSERT INTO fhir_consents (id, patient, grantee, terms, document, version, state, created_at, "
            "updated_at) VALUES ('bad', ?, ?, ?, '{}', 1, 'granted', 1.0, 1.0)",
            (PATIENT, GRANTEE, os.urandom(32)),
        )
