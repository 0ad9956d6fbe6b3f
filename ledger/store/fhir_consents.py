"""FHIR Consent resources as the facade keeps them: the signed document, its digest and its transactions.

Only what the chain cannot hold is here: the document itself (the chain holds its digest) and which
transactions granted and withdrew it. Whether it is in force is read from the chain's events
(:mod:`ledger.fhir.consent_resources`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ledger.store.database import Connection, with_tx

_COLUMNS = (
    "id, patient, grantee, terms, document, version, grant_tx, grant_block, revoke_tx, revoke_block, "
    "created_at, updated_at"
)


@dataclass(frozen=True)
class StoredConsent:
    """One FHIR Consent: who it is about and for, the signed document and the transactions behind it."""

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


def insert_consent(conn: Connection, consent: StoredConsent) -> None:
    """Keep a Consent that was just granted on chain."""
    with_tx(
        conn,
        lambda: conn.execute(
            f"INSERT INTO fhir_consents ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                consent.id,
                consent.patient.lower(),
                consent.grantee.lower(),
                consent.terms,
                consent.document,
                consent.version,
                consent.grant_tx,
                consent.grant_block,
                consent.revoke_tx,
                consent.revoke_block,
                consent.created_at,
                consent.updated_at,
            ),
        ),
    )


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
    row = conn.execute(f"SELECT {_COLUMNS} FROM fhir_consents WHERE id = ?", (consent_id,)).fetchone()
    return None if row is None else _stored(row)


def find_consents(conn: Connection, *, patient: str | None = None, grantee: str | None = None) -> list[StoredConsent]:
    """The Consents about ``patient`` and/or given to ``grantee`` (at least one is named), oldest first."""
    where, params = [], []
    for column, value in (("patient", patient), ("grantee", grantee)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value.lower())
    if not where:
        raise ValueError("name a patient or a grantee")
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM fhir_consents WHERE {' AND '.join(where)} ORDER BY created_at, id", tuple(params)
    ).fetchall()
    return [_stored(r) for r in rows]
