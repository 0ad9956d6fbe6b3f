"""Access decisions: may an organisation access a patient's data of a scope for a purpose now?

The contract's ``isPermitted`` decides. When it refuses, the reason (no consent, not yet valid,
expired, revoked) is read from the stored consents of the exact scope, then of ``*``. Every chain read
of one decision is made at one block, the newest when the decision starts (:func:`decide_at`), so
the verdict, the reason and the consent that decided are of one chain state, which the decision
names (:class:`ChainState`: chain, registry, block number and hash) for the access trail.

Break-glass access skips consent, is allowed only to organisations holding ``EMERGENCY_ROLE`` and
only for an emergency purpose of use (the set the ConsentRegistry holds:
:func:`require_emergency_purpose`), and is always recorded on chain, with its purpose, and in the
access trail.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from ledger.chain.client import BlockHeader, Chain
from ledger.consent.codes import ALL_DATA
from ledger.consent.registry import ConsentRegistryClient
from ledger.consent.terms import ConsentKey, ConsentRecord, ConsentState
from ledger.exceptions import NotEmergencyPurposeError

EMERGENCY_PURPOSE = "ETREAT"
"""The purpose a break-glass access is recorded with unless the caller names another."""
NOT_EMERGENCY = "not_authorised_for_break_glass"
"""The access trail's reason for a break-glass attempt by a caller without the emergency role."""
NOT_EMERGENCY_PURPOSE = NotEmergencyPurposeError.code
"""The access trail's reason for a break-glass attempt for a purpose that is no emergency."""

_REASONS = {ConsentState.PENDING: "not_yet_valid", ConsentState.EXPIRED: "expired", ConsentState.REVOKED: "revoked"}


@dataclass(frozen=True)
class ChainState:
    """The chain state a decision was read at: one block of one ConsentRegistry deployment.

    ``block_hash`` pins the block beyond its number: anyone can ask any node of the chain for block
    ``block`` and check it is this one (and, with an archive node, repeat every read at it)."""

    chain_id: int
    registry: str
    block: int
    block_hash: bytes


def chain_state(consents: ConsentRegistryClient, block: int, block_hash: bytes) -> ChainState:
    """The state of ``consents``' chain at the block ``block`` whose hash is ``block_hash``."""
    return ChainState(consents.chain.chain_id, consents.address, block, block_hash)


@dataclass(frozen=True)
class ConsentDecision:
    """The contract's verdict on one access and, if it refuses, why (from the stored consents).

    ``deciding`` is the stored consent whose state decided: the active one when permitted, the
    refused one whose state gave the reason when denied, None when no consent of the exact scope
    or of ``*`` was ever granted (``no_consent``). ``chain`` is the block every read was made at."""

    permitted: bool
    reason: str | None
    states: dict[str, str]
    checked_at: int
    chain: ChainState
    deciding: ConsentRecord | None

    @property
    def consent(self) -> ConsentKey | None:
        """The key of the consent that decided, if any."""
        return None if self.deciding is None else self.deciding.key


def decide(
    consents: ConsentRegistryClient, chain: Chain, patient: str, grantee: str, scope: str, purpose: str
) -> ConsentDecision:
    """Decide at the newest block (read once: number, hash and time): see :func:`decide_at`.

    Raises InvalidCodeError for a malformed scope or an unknown purpose, before any chain call.
    """
    key = ConsentKey(patient, grantee, scope, purpose)
    return decide_at(consents, key, chain.block_header("latest"))


def decide_at(consents: ConsentRegistryClient, key: ConsentKey, head: BlockHeader) -> ConsentDecision:
    """Ask ``isPermitted`` at block ``head``; when it refuses, derive the reason from the exact
    scope's consent, then '*', as stored at that same block.

    ``head`` must be a block of ``consents``' chain; a decision at an older block answers what the
    chain said then (a grant mined after it changes nothing)."""
    on_chain = consents.is_permitted(key.patient, key.grantee, key.scope, key.purpose, block=head.number)
    # The contract judges by the block's time, which stands still while no block is mined (an idle
    # embedded chain): a consent that has since expired must not pass, so the window is also checked
    # against the wall clock and both must agree.
    now = max(head.timestamp, int(time.time()))
    scopes = [key.scope] if key.scope == ALL_DATA else [key.scope, ALL_DATA]
    records = [consents.consent_of(replace(key, scope=s), as_of=now, block=head.number) for s in scopes]
    active = [record for record in records if record.state is ConsentState.ACTIVE]
    refused = [record for record in records if record.state in _REASONS]
    permitted = on_chain and bool(active)
    deciding = active[0] if permitted else (refused[0] if refused else None)
    reason = None if permitted else (_REASONS[deciding.state] if deciding is not None else "no_consent")
    return ConsentDecision(
        permitted,
        reason,
        {record.key.scope: record.state.value for record in records},
        now,
        chain_state(consents, head.number, head.hash),
        deciding,
    )


def require_emergency_purpose(consents: ConsentRegistryClient, purpose: str) -> None:
    """Refuse break-glass access for a purpose outside the registry's emergency purposes (research
    or payment need consent), before anything is sent: the contract would refuse it too.

    Raises:
        NotEmergencyPurposeError: ``purpose`` is not one of them.
    """
    allowed = consents.emergency_purposes()
    if purpose not in allowed:
        raise NotEmergencyPurposeError(
            f"break-glass access is only for an emergency purpose ({', '.join(sorted(allowed))}), not {purpose!r}",
            purpose=purpose,
            emergency_purposes=sorted(allowed),
        )
