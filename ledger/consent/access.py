"""Access decisions: may an organisation access a patient's data of a scope for a purpose now?

The contract's ``isPermitted`` decides. When it refuses, the reason (no consent, not yet valid,
expired, revoked) is read from the stored consents of the exact scope, then of ``*``. Break-glass
access skips consent, is allowed only to organisations holding ``EMERGENCY_ROLE`` and only for an
emergency purpose of use (the set the ConsentRegistry holds: :func:`require_emergency_purpose`), and
is always recorded on chain, with its purpose, and in the access trail.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from ledger.chain.client import Chain
from ledger.consent.codes import ALL_DATA
from ledger.consent.registry import ConsentRegistryClient
from ledger.consent.terms import ConsentKey, ConsentState
from ledger.exceptions import NotEmergencyPurposeError

EMERGENCY_PURPOSE = "ETREAT"
"""The purpose a break-glass access is recorded with unless the caller names another."""
NOT_EMERGENCY = "not_authorised_for_break_glass"
"""The access trail's reason for a break-glass attempt by a caller without the emergency role."""
NOT_EMERGENCY_PURPOSE = NotEmergencyPurposeError.code
"""The access trail's reason for a break-glass attempt for a purpose that is no emergency."""

_REASONS = {ConsentState.PENDING: "not_yet_valid", ConsentState.EXPIRED: "expired", ConsentState.REVOKED: "revoked"}


@dataclass(frozen=True)
class ConsentDecision:
    """The contract's verdict on one access and, if it refuses, why (from the stored consents)."""

    permitted: bool
    reason: str | None
    states: dict[str, str]
    checked_at: int


def decide(
    consents: ConsentRegistryClient, chain: Chain, patient: str, grantee: str, scope: str, purpose: str
) -> ConsentDecision:
    """Ask ``isPermitted``; when it refuses, derive the reason from the exact scope's consent, then '*'.

    Raises InvalidCodeError for a malformed scope or an unknown purpose, before any chain call.
    """
    key = ConsentKey(patient, grantee, scope, purpose)
    on_chain = consents.is_permitted(key.patient, key.grantee, scope, purpose)
    # The contract judges by the newest block's time, which stands still while no block is mined
    # (an idle embedded chain): a consent that has since expired must not pass, so the window is
    # also checked against the wall clock and both must agree.
    now = max(chain.block_timestamp("latest"), int(time.time()))
    scopes = [scope] if scope == ALL_DATA else [scope, ALL_DATA]
    states = {s: consents.consent_of(replace(key, scope=s), as_of=now).state for s in scopes}
    permitted = on_chain and any(state is ConsentState.ACTIVE for state in states.values())
    reason = None
    if not permitted:
        refused = [state for state in states.values() if state in _REASONS]
        reason = _REASONS[refused[0]] if refused else "no_consent"
    return ConsentDecision(permitted, reason, {s: state.value for s, state in states.items()}, now)


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
