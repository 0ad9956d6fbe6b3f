"""What a consent is: its key (patient, grantee, scope, purpose), its terms, and its state.

The contract stores a :class:`ConsentStatus` per key; what that means at a moment (active, not yet
valid, expired, revoked) is :class:`ConsentState`, computed by :func:`consent_state` as the
contract's ``isPermitted`` does.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ledger.consent.codes import encode_purpose
from ledger.exceptions import InputError
from ledger.values import checksum, encode_code


class ConsentStatus(enum.IntEnum):
    """The contract's ``IConsentRegistry.ConsentStatus``, stored per consent key."""

    NONE = 0
    GRANTED = 1
    REVOKED = 2


UINT64_MAX = 2**64 - 1


@dataclass(frozen=True)
class ConsentKey:
    """Which consent: a patient's data of one scope, for one grantee and one purpose of use."""

    patient: str
    grantee: str
    scope: str
    purpose: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "patient", checksum(self.patient))
        object.__setattr__(self, "grantee", checksum(self.grantee))
        encode_code(self.scope)
        encode_purpose(self.purpose)

    def as_revoke_request(self) -> tuple[str, str, bytes, bytes]:
        """The ``RevokeRequest`` tuple the contract takes."""
        return (self.patient, self.grantee, encode_code(self.scope), encode_code(self.purpose))

    def text(self) -> str:
        """The key as one string, ``patient:grantee:scope:purpose`` (checksummed addresses), as the
        access trail and its ``AuditEvent``s name it."""
        return f"{self.patient}:{self.grantee}:{self.scope}:{self.purpose}"


@dataclass(frozen=True)
class GrantTerms:
    """A consent and its validity window (unix seconds, ``valid_from`` inclusive, ``valid_until`` exclusive)."""

    key: ConsentKey
    valid_from: int
    valid_until: int

    def __post_init__(self) -> None:
        for value in (self.valid_from, self.valid_until):
            if not isinstance(value, int) or not 0 <= value <= UINT64_MAX:
                raise InputError(f"validity bound {value!r} is not a uint64", field="validity")
        if self.valid_from >= self.valid_until:
            raise InputError("valid_from must be before valid_until", field="validity")

    def as_grant_request(self) -> tuple[str, str, bytes, bytes, int, int]:
        """The ``GrantRequest`` tuple the contract takes."""
        return (*self.key.as_revoke_request(), self.valid_from, self.valid_until)


MAX_SET_KEYS = 16
"""Most consent keys (scopes x purposes) one consent document may grant: each is a storage write."""


@dataclass(frozen=True)
class ConsentSet:
    """A consent document granted whole: ``patient`` lets ``grantee`` access every scope of ``scopes`` for
    every purpose of ``purposes`` (each pair one :class:`ConsentKey`) during one window, as the document
    whose 32-byte digest is ``terms`` says (a FHIR Consent's, :mod:`ledger.fhir.consent`)."""

    patient: str
    grantee: str
    scopes: tuple[str, ...]
    purposes: tuple[str, ...]
    valid_from: int
    valid_until: int
    terms: bytes

    def __post_init__(self) -> None:
        object.__setattr__(self, "patient", checksum(self.patient))
        object.__setattr__(self, "grantee", checksum(self.grantee))
        if not self.scopes or not self.purposes:
            raise InputError("a consent document names at least one scope and one purpose", field="scopes")
        if len(set(self.scopes)) != len(self.scopes) or len(set(self.purposes)) != len(self.purposes):
            raise InputError("a consent document names each scope and each purpose once", field="scopes")
        if len(self.scopes) * len(self.purposes) > MAX_SET_KEYS:
            raise InputError(
                f"a consent document grants at most {MAX_SET_KEYS} scope and purpose pairs",
                field="scopes",
                limit=MAX_SET_KEYS,
            )
        if not isinstance(self.terms, bytes) or len(self.terms) != 32 or not any(self.terms):
            raise InputError("a consent document's digest is 32 non-zero bytes", field="terms")
        GrantTerms(self.consent_keys()[0], self.valid_from, self.valid_until)  # checks codes and the window

    def consent_keys(self) -> list[ConsentKey]:
        """Every consent key the document grants, scope by scope, purpose by purpose (the contract's order)."""
        return [ConsentKey(self.patient, self.grantee, s, p) for s in self.scopes for p in self.purposes]

    def _codes(self) -> tuple[list[bytes], list[bytes]]:
        return [encode_code(s) for s in self.scopes], [encode_code(p) for p in self.purposes]

    def as_grant_set_request(self) -> tuple[str, str, list[bytes], list[bytes], int, int, bytes]:
        """The ``GrantSetRequest`` tuple the contract takes."""
        scopes, purposes = self._codes()
        return (self.patient, self.grantee, scopes, purposes, self.valid_from, self.valid_until, self.terms)

    def as_revoke_set_request(self) -> tuple[str, str, list[bytes], list[bytes], bytes]:
        """The ``RevokeSetRequest`` tuple the contract takes."""
        scopes, purposes = self._codes()
        return (self.patient, self.grantee, scopes, purposes, self.terms)


class ConsentState(enum.Enum):
    """What a consent means now, for people: active, not yet valid, expired, revoked or never granted."""

    NONE = "none"
    ACTIVE = "active"
    PENDING = "pending"
    EXPIRED = "expired"
    REVOKED = "revoked"


@dataclass(frozen=True)
class ConsentRecord:
    """The registry's stored state of one consent key, and what it means at ``as_of``."""

    key: ConsentKey
    valid_from: int
    valid_until: int
    updated_at: int
    state: ConsentState


def consent_state(status: int, valid_from: int, valid_until: int, now: int) -> ConsentState:
    """Interpret a stored consent at time ``now``, as ``isPermitted`` does."""
    if status == ConsentStatus.NONE:
        return ConsentState.NONE
    if status == ConsentStatus.REVOKED:
        return ConsentState.REVOKED
    if now < valid_from:
        return ConsentState.PENDING
    if now >= valid_until:
        return ConsentState.EXPIRED
    return ConsentState.ACTIVE
