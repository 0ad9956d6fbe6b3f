"""FHIR Consent resources as the facade keeps them: the signed document, its digest and its transactions.

Only what the chain cannot hold is here: the document itself (the chain holds its digest), the
signature it was granted on, and which transactions granted and withdrew it. Whether it is in force
is read from the chain's events (:mod:`ledger.fhir.consent_resources`).

A Consent is kept **pending** (with its signature, the signature's deadline and the chain's head)
before its grant is relayed, and **granted** once the grant is mined. One row per signed Consent:
``(terms, signature)`` is unique, so a retry of the same signed Consent finds the same row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from ledger.store.database import Connection, with_tx

PENDING: Final = "pending"
GRANTED: Final = "granted"

_COLUMNS = (
    "id, patient, grantee, terms, document, version, grant_tx, grant_block, revoke_tx, revoke_block, "
    "created_at, updated_at"
)
_PENDING_COLUMNS = "id, patient, grantee, terms, document, signature, deadline, from_block, created_at"
_ORDER = "ORDER BY created_at, id"


@dataclass(frozen=True)
class StoredConsent:
    """One granted FHIR Consent: who it is about and for, the signed document and the transactions behind it."""

    id: str
    patient: str
    grantee: str
    terms: bytes
    document: str
    version: int
    grant_tx: str
    grant_block: int
    revoke_tx: str | None
    revoke_block: int | None
    created_at: float
    updated_at: float

    @property
    def position(self) -> tuple[float, str]:
        """Where it is in the order searches list Consents (oldest first)."""
        return self.created_at, self.id


@dataclass(frozen=True)
class PendingConsent:
    """A FHIR Consent kept before its grant was relayed: granted on ``signature`` (valid until
    ``deadline``, unix seconds) in a block after ``from_block``, or never."""

    id: str
    patient: str
    grantee: str
    terms: bytes
    document: str
    signature: bytes
    deadline: int
    from_block: int
    created_at: float


def _stored(row: tuple[Any, ...]) -> StoredConsent:
    (
        id_,
        patient,
        grantee,
        terms,
        document,
        version,
        grant_tx,
        grant_block,
        revoke_tx,
        revoke_block,
        created,
        updated,
    ) = row
    return StoredConsent(
        str(id_),
        str(patient),
        str(grantee),
        bytes(terms),
        str(document),
        int(version),
        str(grant_tx),
        int(grant_block),
        None if revoke_tx is None else str(revoke_tx),
        None if revoke_block is None else int(revoke_block),
        float(created),
        float(updated),
    )


def _pending(row: tuple[Any, ...]) -> PendingConsent:
    id_, patient, grantee, terms, document, signature, deadline, from_block, created = row
    return PendingConsent(
        str(id_),
        str(patient),
        str(grantee),
        bytes(terms),
        str(document),
        bytes(signature),
        int(deadline),
        int(from_block),
        float(created),
    )


def keep_pending(conn: Connection, consent: PendingConsent) -> StoredConsent | PendingConsent:
    """Keep a Consent about to be granted, unless the same signed Consent (terms and signature) is
    kept already; return the row kept for it (this one, or the one found)."""
    with_tx(
        conn,
        lambda: conn.execute(
            "INSERT OR IGNORE INTO fhir_consents (id, patient, grantee, terms, document, version, state, signature, "
            "deadline, from_block, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?)",
            (
                consent.id,
                consent.patient.lower(),
                consent.grantee.lower(),
                consent.terms,
                consent.document,
                PENDING,
                consent.signature,
                consent.deadline,
                consent.from_block,
                consent.created_at,
                consent.created_at,
            ),
        ),
    )
    kept = signed_consent(conn, consent.terms, consent.signature)
    assert kept is not None  # inserted just now, or there already; only a pending row is ever deleted
    return kept


def signed_consent(conn: Connection, terms: bytes, signature: bytes) -> StoredConsent | PendingConsent | None:
    """The Consent kept for these terms signed with this signature, granted or pending."""
    row = conn.execute(
        f"SELECT state, {_COLUMNS} FROM fhir_consents WHERE terms = ? AND signature = ?", (terms, signature)
    ).fetchone()
    if row is None:
        return None
    if row[0] == GRANTED:
        return _stored(tuple(row[1:]))
    return pending_consent(conn, str(row[1]))


def complete_consent(conn: Connection, consent_id: str, grant_tx: str, grant_block: int, now: float) -> None:
    """Note the mined transaction that granted a pending Consent (a granted one is left as it is)."""
    with_tx(
        conn,
        lambda: conn.execute(
            "UPDATE fhir_consents SET state = ?, grant_tx = ?, grant_block = ?, updated_at = ? "
            "WHERE id = ? AND state = ?",
            (GRANTED, grant_tx, grant_block, now, consent_id, PENDING),
        ),
    )


def drop_pending(conn: Connection, consent_id: str) -> None:
    """Forget a pending Consent that was never granted (a granted one is kept)."""
    with_tx(conn, lambda: conn.execute("DELETE FROM fhir_consents WHERE id = ? AND state = ?", (consent_id, PENDING)))


def record_withdrawal(conn: Connection, consent_id: str, revoke_tx: str, revoke_block: int, now: float) -> None:
    """Note the transaction that withdrew a Consent (its version 2)."""
    with_tx(
        conn,
        lambda: conn.execute(
            "UPDATE fhir_consents SET version = 2, revoke_tx = ?, revoke_block = ?, updated_at = ? WHERE id = ?",
            (revoke_tx, revoke_block, now, consent_id),
        ),
    )


def get_consent(conn: Connection, consent_id: str) -> StoredConsent | None:
    """The granted Consent ``consent_id`` (a pending one is not, yet)."""
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM fhir_consents WHERE id = ? AND state = ?", (consent_id, GRANTED)
    ).fetchone()
    return None if row is None else _stored(row)


def pending_consent(conn: Connection, consent_id: str) -> PendingConsent | None:
    row = conn.execute(
        f"SELECT {_PENDING_COLUMNS} FROM fhir_consents WHERE id = ? AND state = ?", (consent_id, PENDING)
    ).fetchone()
    return None if row is None else _pending(row)


def _where(state: str, patient: str | None, grantee: str | None) -> tuple[list[str], list[Any]]:
    where, params = ["state = ?"], [state]
    for column, value in (("patient", patient), ("grantee", grantee)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value.lower())
    if len(where) == 1:
        raise ValueError("name a patient or a grantee")
    return where, params


def find_consents(
    conn: Connection,
    *,
    patient: str | None = None,
    grantee: str | None = None,
    after: tuple[float, str] | None = None,
    limit: int | None = None,
) -> list[StoredConsent]:
    """The granted Consents about ``patient`` and/or given to ``grantee`` (at least one is named),
    oldest first: those after the :attr:`StoredConsent.position` ``after``, at most ``limit``."""
    where, params = _where(GRANTED, patient, grantee)
    if after is not None:
        where.append("(created_at, id) > (?, ?)")
        params.extend(after)
    tail = "" if limit is None else f" LIMIT {int(limit)}"
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM fhir_consents WHERE {' AND '.join(where)} {_ORDER}{tail}", tuple(params)
    ).fetchall()
    return [_stored(r) for r in rows]


def find_pending(conn: Connection, *, patient: str | None = None, grantee: str | None = None) -> list[PendingConsent]:
    """The pending Consents about ``patient`` and/or given to ``grantee`` (at least one is named), oldest first."""
    where, params = _where(PENDING, patient, grantee)
    rows = conn.execute(
        f"SELECT {_PENDING_COLUMNS} FROM fhir_consents WHERE {' AND '.join(where)} {_ORDER}", tuple(params)
    ).fetchall()
    return [_pending(r) for r in rows]
