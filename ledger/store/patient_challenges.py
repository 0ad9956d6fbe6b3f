"""Single-use sign-in challenges: issued to a patient, consumed by the sign-in that answers them."""

from __future__ import annotations

import secrets

from ledger.store.database import Connection, with_tx

CHALLENGE_BYTES = 32


def issue_challenge(conn: Connection, patient: str, now: float, lifetime: float) -> bytes:
    """A fresh random challenge for ``patient``, valid for ``lifetime`` seconds (expired ones are dropped)."""
    challenge = secrets.token_bytes(CHALLENGE_BYTES)

    def write() -> None:
        conn.execute("DELETE FROM patient_challenges WHERE expires_at < ?", (now,))
        conn.execute(
            "INSERT INTO patient_challenges (challenge, patient, expires_at) VALUES (?, ?, ?)",
            (challenge, patient.lower(), now + lifetime),
        )

    with_tx(conn, write)
    return challenge


def consume_challenge(conn: Connection, challenge: bytes, patient: str, now: float) -> bool:
    """Use up ``challenge`` if it was issued to ``patient`` and has not expired; True if it was."""
    row = with_tx(
        conn,
        lambda: conn.execute(
            "DELETE FROM patient_challenges WHERE challenge = ? AND patient = ? AND expires_at >= ? "
            "RETURNING challenge",
            (challenge, patient.lower(), now),
        ).fetchone(),
    )
    return row is not None
