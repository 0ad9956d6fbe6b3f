"""Which FHIR Consent of the facade granted the consent that decided an access, as of the decision's block.

A consent key (patient, grantee, scope, purpose) holds whatever its newest grant or revocation on
chain wrote; a FHIR Consent created through ``/fhir/r4`` is one ``grantSetBySig`` transaction
granting every key of its document (:mod:`ledger.fhir.consent_resources` keeps it, with that
transaction). The Consent behind a decision is the one whose grant transaction carries the newest
``ConsentGranted`` of the deciding key at or before the decision's block, read from the chain index
(:func:`ledger.store.chain_index.patient_events`), never from a chain scan.

The index may lag the chain (it reads only blocks ``confirmations`` deep, and in the background), so
a grant or revocation of the key may be mined but not indexed yet, and the newest indexed grant be
an older one. The index is therefore asked only once it has read every block up to the decision's
(:func:`ledger.store.chain_index.indexed_to`); before that the answer is "none found", never a guess. The
service indexes up to the head before asking (:mod:`api.routes.access`), so with no confirmations
configured a decision names its Consent; with confirmations, a decision at the newest block names
none. (Block times cannot stand in for the index: the embedded chain may mine two blocks in the same
second.)
"""

from __future__ import annotations

from ledger.chain.contracts import CONSENT_CHANGE_EVENTS
from ledger.consent.terms import ConsentKey, ConsentRecord, ConsentState
from ledger.fhir.consent import stored_document
from ledger.store.chain_index import IndexedEvent, indexed_to, patient_events
from ledger.store.database import Connection
from ledger.store.fhir_consents import StoredConsent, find_consents

GRANTED = "ConsentGranted"


def _changes_of(conn: Connection, key: ConsentKey, block: int) -> list[IndexedEvent]:
    """The indexed grants and revocations of ``key`` mined at or before ``block``, in chain order."""
    return [
        event
        for event in patient_events(conn, key.patient)
        if event.event in CONSENT_CHANGE_EVENTS
        and event.block_number <= block
        and event.consent_terms() == (key.grantee, key.scope, key.purpose)
    ]


def _grants_key(stored: StoredConsent, key: ConsentKey) -> bool:
    """Whether the stored Consent's document grants ``key``."""
    return key in stored_document(stored.document).consent.consent_keys()


def deciding_grant(conn: Connection, record: ConsentRecord, block: int) -> IndexedEvent | None:
    """The indexed ``ConsentGranted`` that wrote (or, revoked since, last wrote) ``record`` as the
    registry held it at ``block``; None when the key was never granted, or when the index has not
    read up to ``block`` yet.

    Args:
        conn: The store (its chain index).
        record: The key's stored consent as read at ``block``.
        block: The decision's block.
    """
    if record.state is ConsentState.NONE:
        return None
    covered = indexed_to(conn)
    if covered is None or covered < block:
        return None  # a newer grant or revocation may be mined but not indexed
    grants = [event for event in _changes_of(conn, record.key, block) if event.event == GRANTED]
    return grants[-1] if grants else None


def deciding_fhir_consent(conn: Connection, record: ConsentRecord, block: int) -> str | None:
    """The id of the facade's FHIR Consent whose grant is the newest grant of ``record.key`` at or
    before ``block`` (see :func:`deciding_grant`), or None: granted otherwise (``/v1``, the patient
    page), never granted, or not indexed yet.
    """
    grant = deciding_grant(conn, record, block)
    if grant is None:
        return None
    key = record.key
    for stored in find_consents(conn, patient=key.patient, grantee=key.grantee):
        if stored.grant_tx.lower() == grant.tx_hash.lower() and _grants_key(stored, key):
            return stored.id
    return None
