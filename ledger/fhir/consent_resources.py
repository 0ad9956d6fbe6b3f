"""FHIR Consent resources: created (granted on chain whole), withdrawn, read and searched.

**Identity and history.** Each create is a new Consent with a server-assigned id: one consent
document, granted by one ``grantSetBySig`` transaction, for one patient and one grantee and every
scope and purpose pair of its provision. Granting the same keys again (a new Consent, or a grant
through ``/v1``) replaces them on chain: the older Consent then no longer governs those keys.
Version 1 is the Consent as granted; version 2 the same terms withdrawn through the facade
(``PUT`` with ``status`` ``inactive`` and a ``ConsentRevocationSet`` signature over the same terms).

**Status is the chain's.** A Consent is ``active`` while at least one of its keys is still governed
by its own grant: the newest indexed ``ConsentGranted``/``ConsentRevoked`` event of the key is in the
Consent's grant transaction (or none is indexed past it yet). Otherwise (all its keys revoked, by
the facade, ``/v1`` or the patient page, or granted again by something else) it is ``inactive``. As
IHE PCF has it, a Consent whose period ended stays ``active``: its period says it no longer applies.

**Who sees what.** An organisation sees the Consents that name it as grantee; a patient's session
sees the patient's own.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ledger.chain.contracts import CONSENT_CHANGE_EVENTS
from ledger.consent.relay import Admit, Relayed, Relayer
from ledger.consent.terms import ConsentKey
from ledger.exceptions import ConflictError, InputError, NotFoundError
from ledger.fhir.consent import GRANTING, WITHDRAWN, ConsentDocument, read_consent
from ledger.store.chain_index import IndexedEvent, patient_events
from ledger.store.database import Connection
from ledger.store.fhir_consents import StoredConsent, find_consents, get_consent, insert_consent, record_withdrawal
from ledger.values import checksum

STATUSES = (GRANTING, WITHDRAWN)
"""The statuses a served Consent has (and a search by ``status`` may ask for)."""


@dataclass(frozen=True)
class Viewer:
    """Who reads: an organisation (by its chain address) or a patient's own session."""

    organisation: str | None = None
    patient: str | None = None

    def may_see(self, stored: StoredConsent) -> bool:
        if self.patient is not None:
            return stored.patient == self.patient.lower()
        return self.organisation is not None and stored.grantee == self.organisation.lower()


@dataclass(frozen=True)
class ConsentResource:
    """A Consent as served: what is stored and its status on chain now."""

    stored: StoredConsent
    status: str

    def to_fhir(self) -> dict[str, Any]:
        """The R4 Consent: the signed terms with the server's ``id`` and ``meta`` and the chain's status."""
        terms = json.loads(self.stored.document)
        terms.pop("resourceType", None)
        return {
            "resourceType": "Consent",
            "id": self.stored.id,
            "meta": {"versionId": str(self.stored.version), "lastUpdated": fhir_instant(self.stored.updated_at)},
            "status": self.status,
            **terms,
        }


def fhir_instant(seconds: float) -> str:
    """A FHIR ``instant`` (UTC, milliseconds)."""
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _document_of(stored: StoredConsent) -> ConsentDocument:
    return read_consent({**json.loads(stored.document), "status": GRANTING})


def _latest_by_key(events: list[IndexedEvent]) -> dict[tuple[str, str, str], IndexedEvent]:
    latest: dict[tuple[str, str, str], IndexedEvent] = {}
    for event in events:  # in chain order
        if event.event in CONSENT_CHANGE_EVENTS:
            latest[(event.fields["grantee"], event.fields["scope"], event.fields["purpose"])] = event
    return latest


def _governed(stored: StoredConsent, key: ConsentKey, latest: dict[tuple[str, str, str], IndexedEvent]) -> bool:
    """Whether ``key`` is still governed by this Consent's own grant (as far as the index has read)."""
    event = latest.get((key.grantee, key.scope, key.purpose))
    return event is None or event.block_number < stored.grant_block or event.tx_hash == stored.grant_tx


def _status(stored: StoredConsent, latest: dict[tuple[str, str, str], IndexedEvent]) -> str:
    if stored.revoke_tx is not None:
        return WITHDRAWN
    keys = _document_of(stored).consent.consent_keys()
    return GRANTING if any(_governed(stored, key, latest) for key in keys) else WITHDRAWN


def _resource(conn: Connection, stored: StoredConsent) -> ConsentResource:
    return ConsentResource(stored, _status(stored, _latest_by_key(patient_events(conn, stored.patient))))


def create_consent(
    relayer: Relayer, conn: Connection, resource: dict[str, Any], admit: Admit | None
) -> ConsentResource:
    """Grant a signed Consent on chain whole, then keep it; ``admit`` may refuse once the local checks passed.

    Raises:
        InvalidFhirError, UnsupportedFhirError, InputError: As :func:`ledger.fhir.consent.read_consent`,
            or it carries no signature.
        InvalidSignatureError, SignatureExpiredError, NotPatientOrGuardianError: As the relayer's checks.
    """
    document = read_consent(resource, statuses=(GRANTING,))
    if document.signed is None:
        raise InputError(
            "a Consent is granted on its patient's EIP-712 ConsentGrantSet signature: add the signature extension",
            field="Consent.extension",
            expression="Consent.extension",
        )
    relayed = relayer.grant_set(document.consent, document.signed, admit)
    now = time.time()
    stored = StoredConsent(
        id=secrets.token_hex(16),
        patient=document.consent.patient.lower(),
        grantee=document.consent.grantee.lower(),
        terms=document.terms,
        document=document.terms_json.decode("utf-8"),
        version=1,
        grant_tx=_tx(relayed),
        grant_block=relayed.block_number,
        revoke_tx=None,
        revoke_block=None,
        created_at=now,
        updated_at=now,
    )
    insert_consent(conn, stored)
    return ConsentResource(stored, GRANTING)


def withdraw_consent(
    relayer: Relayer,
    conn: Connection,
    viewer: Viewer,
    consent_id: str,
    resource: dict[str, Any],
    admit: Admit | None,
) -> ConsentResource:
    """Withdraw a Consent: the body is the Consent with ``status`` ``inactive`` and a
    ``ConsentRevocationSet`` signature over its (unchanged) terms.

    Raises:
        NotFoundError: No such Consent the viewer may see.
        InputError: The body's id is not ``consent_id``, its terms differ from the granted ones, or it
            carries no signature.
        ConflictError: It is inactive already, or one of its keys is now governed by another grant
            (withdrawing would revoke that one too).
    """
    stored = read_consent_resource(conn, viewer, consent_id).stored
    if resource.get("id") != consent_id:
        raise InputError("the Consent's id must be the one in the URL", field="Consent.id", expression="Consent.id")
    document = read_consent(resource, statuses=(WITHDRAWN,))
    if document.terms != stored.terms:
        raise InputError(
            "only the status of a Consent changes: these terms differ from the granted ones (create a new Consent)",
            field="Consent",
            expression="Consent",
        )
    if document.signed is None:
        raise InputError(
            "a Consent is withdrawn on a ConsentRevocationSet signature: add the signature extension",
            field="Consent.extension",
            expression="Consent.extension",
        )
    latest = _latest_by_key(patient_events(conn, stored.patient))
    if _status(stored, latest) != GRANTING:
        raise ConflictError("this Consent is inactive already", consent=consent_id)
    for key in document.consent.consent_keys():
        event = latest.get((key.grantee, key.scope, key.purpose))
        if not _governed(stored, key, latest) and event is not None and event.event == "ConsentGranted":
            raise ConflictError(
                f"the consent to {key.scope} for {key.purpose} was granted again since (transaction {event.tx_hash}): "
                "withdraw that grant instead",
                consent=consent_id,
                scope=key.scope,
                purpose=key.purpose,
            )
    relayed = relayer.revoke_set(document.consent, document.signed, admit)
    now = time.time()
    record_withdrawal(conn, consent_id, _tx(relayed), relayed.block_number, now)
    updated = get_consent(conn, consent_id)
    assert updated is not None  # written just now
    return ConsentResource(updated, WITHDRAWN)


def read_consent_resource(conn: Connection, viewer: Viewer, consent_id: str) -> ConsentResource:
    """A Consent the viewer may see (any other is not found, so ids do not leak)."""
    stored = get_consent(conn, consent_id)
    if stored is None or not viewer.may_see(stored):
        raise NotFoundError(f"no Consent {consent_id!r}", resource=f"Consent/{consent_id}")
    return _resource(conn, stored)


def search_consents(
    conn: Connection, viewer: Viewer, *, patient: str | None = None, status: str | None = None
) -> list[ConsentResource]:
    """The Consents the viewer may see, of ``patient`` and with ``status`` when given, oldest first."""
    if status is not None and status not in STATUSES:
        return []
    if viewer.patient is not None:
        if patient is not None and checksum(patient) != checksum(viewer.patient):
            return []
        found = find_consents(conn, patient=viewer.patient)
    elif viewer.organisation is not None:
        found = find_consents(conn, patient=patient, grantee=viewer.organisation)
    else:
        return []
    events: dict[str, dict[tuple[str, str, str], IndexedEvent]] = {}
    results = []
    for stored in found:
        if stored.patient not in events:
            events[stored.patient] = _latest_by_key(patient_events(conn, stored.patient))
        served = ConsentResource(stored, _status(stored, events[stored.patient]))
        if status is None or served.status == status:
            results.append(served)
    return results


def _tx(relayed: Relayed) -> str:
    return "0x" + relayed.tx_hash.hex()
