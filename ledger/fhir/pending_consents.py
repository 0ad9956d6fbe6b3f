"""Pending FHIR Consents settled from the chain: completed with their mined grant, dropped once no
grant can come, or left pending.

A Consent is kept pending before its grant is relayed, and completed once the grant is mined
(:func:`ledger.fhir.consent_resources.create_consent`). A process that dies in between (after the
grant is mined, even) leaves the row pending; whoever touches it next (a retry of the same signed
Consent, a read of it, a search that would list it) settles it here, from the chain itself:

* its grant is mined (a ``ConsentSetGranted`` of its terms for its patient and grantee, after the
  row was kept, in a transaction that carried its signature): it is completed with that grant;
* no grant, and the newest block is past the signature's deadline: no grant can ever be mined (the
  registry refuses a signature past its deadline, and later blocks are later still), so it is dropped;
* otherwise it stays pending: a relay is under way, or died before sending (a retry relays it).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from ledger.consent.registry import ConsentRegistryClient
from ledger.exceptions import ChainError
from ledger.store.database import Connection
from ledger.store.fhir_consents import PendingConsent, StoredConsent, complete_consent, drop_pending, get_consent

log = logging.getLogger("careledger.fhir")


def settle(consents: ConsentRegistryClient, conn: Connection, pending: PendingConsent) -> StoredConsent | None:
    """The Consent completed with its grant, or None: still pending, or dropped (see the module).

    Raises:
        ChainError: The chain could not be asked (the row is left as it was).
    """
    head = consents.chain.block_number()  # first the block, then its logs: nothing mined up to it is missed
    block_time = consents.chain.block_timestamp(head)
    found = consents.set_grant_of(
        pending.patient,
        pending.grantee,
        pending.terms,
        pending.signature,
        from_block=pending.from_block,
        to_block=head,
    )
    if found is not None:
        tx_hash, block = found
        complete_consent(conn, pending.id, "0x" + tx_hash.hex(), block, time.time())
        granted = get_consent(conn, pending.id)
        assert granted is not None  # completed just now (or by another at the same time); never dropped
        return granted
    if block_time > pending.deadline:
        drop_pending(conn, pending.id)
    return None


def settle_all(consents: ConsentRegistryClient, conn: Connection, pending: Iterable[PendingConsent]) -> None:
    """Settle each, for a read or a search: a chain that cannot be asked now leaves them pending
    (and unserved) rather than failing what only reads the store."""
    for consent in pending:
        try:
            settle(consents, conn, consent)
        except ChainError as err:
            log.warning("pending Consent %s left pending: %s", consent.id, type(err).__name__)
            return
