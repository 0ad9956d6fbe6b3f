"""FHIR Consent resources: created (granted on chain whole), withdrawn, read and searched.

**Identity and history.** Each create is a new Consent with a server-assigned id: one consent
document, granted by one ``grantSetBySig`` transaction, for one patient and one grantee and every
scope and purpose pair of its provision. Granting the same keys again (a new Consent, or a grant
through ``/v1``) replaces them on chain: the older Consent then no longer governs those keys.
Version 1 is the Consent as granted; version 2 the same terms withdrawn through the facade
(``PUT`` with ``status`` ``inactive`` and a ``ConsentRevocationSet`` signature over the same terms).

**Created durably, once.** A create keeps the Consent *pending* (its id, terms, document and the
signature) before its grant is relayed, and completes it with the grant's transaction and block
once mined. A retry of the same signed Consent (same terms, same signature), while or after it is
pending, answers the same Consent: ``200`` when it was granted already; ``201`` when the retry
grants it: from the chain when the grant was mined by a call that died before completing it (its
``ConsentSetGranted`` event, in a transaction that carried the signature), or by relaying it when
that call died before sending. Identical creates at once relay it once (one create per consent
document at a time, :func:`ledger.store.locks.granting_document`; ``(terms, signature)`` is unique
in the store), and both answer the same id.

**Pending Consents are not served**: a read answers 404 and a search leaves them out (no ``draft``
or ``proposed`` Consent is ever served). A read or search that reaches one settles it from the
chain first (:mod:`ledger.fhir.pending_consents`): completed when its grant is mined, dropped when
the newest block is past its signature's deadline with no grant.

**Status is the chain's.** A Consent is ``active`` while at least one of its keys is still governed
by its own grant: the newest indexed ``ConsentGranted``/``ConsentRevoked`` event of the key is in the
Consent's grant transaction (or none is indexed past it yet). Otherwise (all its keys revoked, by
the facade, ``/v1`` or the patient page, or granted again by something else) it is ``inactive``. As
IHE PCF has it, a Consent whose period ended stays ``active``: its period says it no longer applies.

**How late the status can be.** The facade's own changes show at once: a Consent it created is
``active`` in the create's answer and in every read after (no indexed event of its keys is past its
grant yet), one it withdrew ``inactive`` (its withdrawal transaction is kept). A change made
elsewhere (a revocation through ``/v1`` or the patient page, a grant of the same keys) shows once
the chain index has read its block, and the index reads a block only once ``confirmations`` (c)
blocks are on top of it: a change mined in block b shows from the indexer's first pass after block
b + c is mined (passes run every 0.5 s, and at once after this service relays a transaction). So it
is c blocks late (and up to one pass); with c = 0 (the default) only that pass, and not at all when
this service relayed it (``/v1``, the patient page). The embedded chain mines a block per
transaction: there c blocks are c further transactions.

**Paged search.** ``_count`` Consents a page (1 to 200, 50 by default), oldest first (by creation,
then id: a stable order); the ``next`` link carries ``_cursor``, the id of the page's last Consent.
``total`` is given when the whole result is on one page.

**Who sees what.** An organisation sees the Consents that name it as grantee; a patient's session
sees the patient's own.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from ledger.chain.contracts import CONSENT_CHANGE_EVENTS
from ledger.consent.registry import ConsentRegistryClient
from ledger.consent.relay import Admit, Relayed, Relayer, Signed
from ledger.consent.terms import ConsentKey, ConsentSet
from ledger.exceptions import (
    ChainError,
    ConflictError,
    ContractRevertError,
    InputError,
    InvalidSignatureError,
    NotFoundError,
    NotPatientOrGuardianError,
)
from ledger.fhir.consent import GRANTING, WITHDRAWN, ConsentDocument, read_consent, stored_document
from ledger.fhir.pending_consents import settle, settle_all
from ledger.fhir.search_parameters import DEFAULT_COUNT, page_count, reference_address, single_value
from ledger.store.chain_index import IndexedEvent, patient_events
from ledger.store.database import Connection, Database
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
    record_withdrawal,
    signed_consent,
)
from ledger.store.locks import granting_document
from ledger.values import checksum

STATUSES = (GRANTING, WITHDRAWN)
"""The statuses a served Consent has (and a search by ``status`` may ask for)."""
SEARCH_PARAMETERS = ("patient", "status", "_count", "_cursor")
"""What a Consent search may name (IHE ITI-108's, and paging); any other parameter is refused, not ignored."""


@dataclass(frozen=True)
class Viewer:
    """Who reads: an organisation (by its chain address) or a patient's own session."""

    organisation: str | None = None
    patient: str | None = None

    def may_see(self, stored: StoredConsent | PendingConsent) -> bool:
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


def _latest_by_key(events: list[IndexedEvent]) -> dict[tuple[str, str, str], IndexedEvent]:
    latest: dict[tuple[str, str, str], IndexedEvent] = {}
    for event in events:  # in chain order
        if event.event in CONSENT_CHANGE_EVENTS:
            latest[event.consent_terms()] = event
    return latest


def _governed(stored: StoredConsent, key: ConsentKey, latest: dict[tuple[str, str, str], IndexedEvent]) -> bool:
    """Whether ``key`` is still governed by this Consent's own grant (as far as the index has read)."""
    event = latest.get((key.grantee, key.scope, key.purpose))
    return event is None or event.block_number < stored.grant_block or event.tx_hash == stored.grant_tx


def _status(stored: StoredConsent, latest: dict[tuple[str, str, str], IndexedEvent]) -> str:
    if stored.revoke_tx is not None:
        return WITHDRAWN
    keys = stored_document(stored.document).consent.consent_keys()
    return GRANTING if any(_governed(stored, key, latest) for key in keys) else WITHDRAWN


def _resource(conn: Connection, stored: StoredConsent) -> ConsentResource:
    return ConsentResource(stored, _status(stored, _latest_by_key(patient_events(conn, stored.patient))))


def create_consent(
    relayer: Relayer, db: Database, resource: dict[str, Any], admit: Admit | None
) -> tuple[ConsentResource, bool]:
    """Grant a signed Consent on chain whole, keeping it first (pending) and completing it once mined;
    ``admit`` may refuse once the local checks passed. Returns the Consent and whether this call
    granted it (False: the same signed Consent was granted already, and is answered again).

    A retry of the same signed Consent (same terms and signature) answers the same Consent: the one
    granted, or the pending one completed from the chain (its grant mined, by a call that died
    before completing it), or relayed now (that call died before sending). One at a time per
    consent document, across replicas (:func:`ledger.store.locks.granting_document`).

    Raises:
        InvalidFhirError, UnsupportedFhirError, InputError: As :func:`ledger.fhir.consent.read_consent`,
            or it carries no signature.
        InvalidSignatureError, SignatureExpiredError, NotPatientOrGuardianError: As the relayer's checks.
        ChainError: As the relay (a pending Consent is left to be settled by the next touch).
    """
    document = read_consent(resource, statuses=(GRANTING,))
    signed = document.signed
    if signed is None:
        raise InputError(
            "a Consent is granted on its patient's EIP-712 ConsentGrantSet signature: add the signature extension",
            field="Consent.extension",
            expression="Consent.extension",
        )
    with granting_document(db, document.terms):
        conn = db.conn
        kept = signed_consent(conn, document.terms, signed.signature)
        if isinstance(kept, StoredConsent):
            _admit(admit, document)
            return _resource(conn, kept), False
        if kept is not None:  # pending: a call that died after sending, or before
            granted = settle(relayer.consents, conn, kept)
            if granted is not None:
                _admit(admit, document)
                return _resource(conn, granted), True
            kept = pending_consent(conn, kept.id)  # None if dropped (its deadline passed: the relay refuses it)
        pending = kept or _pending_of(document, signed)
        return ConsentResource(_grant(relayer, conn, document.consent, signed, pending, admit), GRANTING), True


def _admit(admit: Admit | None, document: ConsentDocument) -> None:
    """Answering a Consent granted already: the caller must be one who may relay it (and pays as for a relay)."""
    if admit is not None:
        admit(document.consent.patient)


def _pending_of(document: ConsentDocument, signed: Signed) -> PendingConsent:
    return PendingConsent(
        id=secrets.token_hex(16),
        patient=document.consent.patient.lower(),
        grantee=document.consent.grantee.lower(),
        terms=document.terms,
        document=document.terms_json.decode("utf-8"),
        signature=signed.signature,
        deadline=signed.deadline,
        from_block=0,  # set when kept: the chain's head just before sending
        created_at=time.time(),
    )


def _grant(
    relayer: Relayer,
    conn: Connection,
    consent: ConsentSet,
    signed: Signed,
    pending: PendingConsent,
    admit: Admit | None,
) -> StoredConsent:
    """Relay the grant of ``pending`` (kept once the local checks passed, just before sending) and
    complete it; if the relay fails, the chain says whether it was granted after all."""

    def admit_and_keep(patient: str) -> None:
        if admit is not None:
            admit(patient)
        keep_pending(conn, replace(pending, from_block=relayer.chain.block_number()))

    try:
        relayed = relayer.grant_set(consent, signed, admit_and_keep)
    except (InvalidSignatureError, NotPatientOrGuardianError, ContractRevertError):
        # Refused before sending: granted only if an earlier call's grant is mined, else never.
        granted = _granted_after_all(relayer, conn, pending.id, drop=True)
        if granted is None:
            raise
        return granted
    except ChainError:  # perhaps sent: mined, or to be settled by the next touch
        granted = _granted_after_all(relayer, conn, pending.id, drop=False)
        if granted is None:
            raise
        return granted
    complete_consent(conn, pending.id, _tx(relayed), relayed.block_number, time.time())
    granted = get_consent(conn, pending.id)
    assert granted is not None  # completed just now
    return granted


def _granted_after_all(relayer: Relayer, conn: Connection, consent_id: str, *, drop: bool) -> StoredConsent | None:
    """The pending Consent completed from the chain, or None (dropped if ``drop``)."""
    pending = pending_consent(conn, consent_id)
    if pending is None:
        return None
    try:
        granted = settle(relayer.consents, conn, pending)
    except ChainError:
        return None
    if granted is None and drop:
        drop_pending(conn, consent_id)
    return granted


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
    stored = read_consent_resource(relayer.consents, conn, viewer, consent_id).stored
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


def read_consent_resource(
    consents: ConsentRegistryClient, conn: Connection, viewer: Viewer, consent_id: str
) -> ConsentResource:
    """A Consent the viewer may see (any other is not found, so ids do not leak); a pending one is
    settled from the chain first, and not found while it stays pending."""
    stored = get_consent(conn, consent_id)
    if stored is None:
        pending = pending_consent(conn, consent_id)
        if pending is not None and viewer.may_see(pending):
            settle_all(consents, conn, [pending])
            stored = get_consent(conn, consent_id)
    if stored is None or not viewer.may_see(stored):
        raise NotFoundError(f"no Consent {consent_id!r}", resource=f"Consent/{consent_id}")
    return _resource(conn, stored)


@dataclass(frozen=True)
class ConsentQuery:
    """A search: about ``patient``, with ``status``; ``count`` Consents after the one ``cursor``
    names (None: from the first)."""

    patient: str | None = None
    status: str | None = None
    count: int = DEFAULT_COUNT
    cursor: str | None = None


@dataclass(frozen=True)
class ConsentPage:
    """The Consents of one page, the cursor of the next (None on the last page), and whether this
    page is the whole result (a first page with none after it)."""

    consents: list[ConsentResource]
    next_cursor: str | None
    whole: bool


def consent_query(params: Mapping[str, Sequence[str]]) -> ConsentQuery:
    """A search from its query parameters (each name's values in order).

    Raises:
        InputError: An unknown parameter, one given more than once, or a malformed value.
    """
    unknown = sorted(set(params) - set(SEARCH_PARAMETERS))
    if unknown:
        raise InputError(f"unsupported search parameters: {', '.join(unknown)}", field=unknown[0])
    patient = single_value(params, "patient")
    return ConsentQuery(
        patient=reference_address(patient, "Patient", "patient") if patient is not None else None,
        status=single_value(params, "status"),
        count=page_count(single_value(params, "_count")),
        cursor=single_value(params, "_cursor"),
    )


def _search_scope(viewer: Viewer, patient: str | None) -> tuple[str | None, str | None] | None:
    """The patient and grantee to list Consents of, or None when the viewer can see none that match."""
    if viewer.patient is not None:
        if patient is not None and checksum(patient) != checksum(viewer.patient):
            return None
        return viewer.patient, None
    if viewer.organisation is not None:
        return patient, viewer.organisation
    return None


def search_consents(
    consents: ConsentRegistryClient, conn: Connection, viewer: Viewer, query: ConsentQuery
) -> ConsentPage:
    """One page of the Consents the viewer may see, of ``query.patient`` and with ``query.status``
    when given, oldest first (by creation, then id: a stable order). Pending Consents in reach are
    settled from the chain first; those still pending are left out.

    Raises:
        InputError: The cursor is not one this search gave (no Consent in the search's reach).
    """
    scope = _search_scope(viewer, query.patient)
    after = None
    if query.cursor is not None:
        named = get_consent(conn, query.cursor)
        if scope is None or named is None or not viewer.may_see(named) or not _in_scope(named, *scope):
            raise InputError("_cursor is not a cursor this search gave", field="_cursor")
        after = named.position
    if scope is None or (query.status is not None and query.status not in STATUSES):
        return ConsentPage([], None, query.cursor is None)
    patient, grantee = scope
    settle_all(consents, conn, find_pending(conn, patient=patient, grantee=grantee))
    events: dict[str, dict[tuple[str, str, str], IndexedEvent]] = {}
    found: list[ConsentResource] = []
    while len(found) <= query.count:  # one more than a page, to know whether another follows
        rows = find_consents(conn, patient=patient, grantee=grantee, after=after, limit=query.count + 1)
        for stored in rows:
            if stored.patient not in events:
                events[stored.patient] = _latest_by_key(patient_events(conn, stored.patient))
            served = ConsentResource(stored, _status(stored, events[stored.patient]))
            if query.status is None or served.status == query.status:
                found.append(served)
        if len(rows) <= query.count:
            break
        after = rows[-1].position
    page = found[: query.count]
    next_cursor = page[-1].stored.id if len(found) > query.count else None
    return ConsentPage(page, next_cursor, query.cursor is None and next_cursor is None)


def _in_scope(stored: StoredConsent, patient: str | None, grantee: str | None) -> bool:
    """Whether a search of ``patient`` and ``grantee`` (None: any) lists ``stored``."""
    pairs = ((patient, stored.patient), (grantee, stored.grantee))
    return all(value is None or value.lower() == column for value, column in pairs)


def _tx(relayed: Relayed) -> str:
    return "0x" + relayed.tx_hash.hex()
