"""Patient consent: the EIP-712 domain, relayed patient-signed changes, the consent list and check."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from api.declared_errors import Raised
from api.errors import REVERTS
from api.schemas.common import (
    EXAMPLE_GRANTEE,
    EXAMPLE_GUARDIAN,
    EXAMPLE_PATIENT,
    EXAMPLE_SIGNATURE,
    EXAMPLE_TX,
    ChainAddress,
    Code,
    Deadline,
    Purpose,
    Schema,
    Signature,
    Uint64,
    camel_config,
)
from ledger.consent.access import ConsentDecision
from ledger.consent.overview import ConsentNow, ConsentOverview
from ledger.consent.relay import Relayed, Signed
from ledger.consent.terms import ConsentKey, GrantTerms
from ledger.consent.typed_data import CONSENT_TYPES, EIP712_DOMAIN_TYPE
from ledger.exceptions import (
    ChainError,
    ChainUnavailableError,
    InputError,
    InvalidCodeError,
    InvalidHexError,
    InvalidSignatureError,
    NotPatientOrGuardianError,
    SignatureExpiredError,
)
from ledger.store.chain_index import IndexedEvent

RELAY_ERRORS: tuple[Raised, ...] = (
    InputError,  # a validity window that ends before it starts
    InvalidCodeError,
    InvalidHexError,
    InvalidSignatureError,
    SignatureExpiredError,
    NotPatientOrGuardianError,
    *(name for name in REVERTS if name.startswith("ConsentRegistry")),
    ChainUnavailableError,
    ChainError,
)
"""What relaying a signed consent change can refuse with (the organisation's and the patient's routes)."""


class DomainOut(Schema):
    """What a wallet needs to sign (``eth_signTypedData_v4``): the domain and the types."""

    domain: dict[str, Any]
    types: dict[str, list[dict[str, str]]]
    primary_types: list[str]

    model_config = camel_config(
        {
            "domain": {
                "name": "CareLedger ConsentRegistry",
                "version": "1",
                "chainId": 131277322940537,
                "verifyingContract": "0x19eC881f565F9d38cbA89AF68862F8A2f685aFb1",
            },
            "types": {"EIP712Domain": EIP712_DOMAIN_TYPE, "ConsentGrant": CONSENT_TYPES["ConsentGrant"]},
            "primaryTypes": [
                "ConsentGrant",
                "ConsentRevocation",
                "ConsentGrantSet",
                "ConsentRevocationSet",
                "GuardianAppointment",
            ],
        }
    )


class NonceOut(Schema):
    """The nonce the patient's next signature must carry."""

    patient: str
    nonce: int

    model_config = camel_config({"patient": EXAMPLE_PATIENT, "nonce": 3})


class SignedRevocationIn(Schema):
    """A ``ConsentRevocation`` signed by the patient or a guardian (``signer``, default the patient)."""

    patient: ChainAddress
    grantee: ChainAddress
    scope: Code
    purpose: Purpose
    signer: ChainAddress | None = None
    deadline: Deadline
    signature: Signature

    model_config = camel_config(
        {
            "patient": EXAMPLE_PATIENT,
            "grantee": EXAMPLE_GRANTEE,
            "scope": "Observation",
            "purpose": "TREAT",
            "deadline": 1767229200,
            "signature": EXAMPLE_SIGNATURE,
        }
    )

    def key(self) -> ConsentKey:
        """The consent this change is about (codes checked)."""
        return ConsentKey(self.patient, self.grantee, self.scope, self.purpose)

    def signed(self) -> Signed:
        """Who signed (the patient unless ``signer`` names a guardian), the deadline and the signature."""
        return Signed(self.signer or self.patient, self.deadline, bytes.fromhex(self.signature[2:]))


class SignedGrantIn(SignedRevocationIn):
    """A ``ConsentGrant`` signed by the patient or a guardian (``signer``, default the patient): the
    revocation's fields and the validity window."""

    valid_from: Uint64
    valid_until: Uint64

    model_config = camel_config(
        {
            "patient": EXAMPLE_PATIENT,
            "grantee": EXAMPLE_GRANTEE,
            "scope": "Observation",
            "purpose": "TREAT",
            "validFrom": 1767225600,
            "validUntil": 1798761600,
            "deadline": 1767229200,
            "signature": EXAMPLE_SIGNATURE,
        }
    )

    def terms(self) -> GrantTerms:
        """The consent and its validity window (checked)."""
        return GrantTerms(self.key(), self.valid_from, self.valid_until)


class SignedGuardianIn(Schema):
    """A ``GuardianAppointment`` signed by the patient; ``validUntil`` 0 removes the guardian."""

    patient: ChainAddress
    guardian: ChainAddress
    valid_until: Uint64
    deadline: Deadline
    signature: Signature

    model_config = camel_config(
        {
            "patient": EXAMPLE_PATIENT,
            "guardian": EXAMPLE_GUARDIAN,
            "validUntil": 1798761600,
            "deadline": 1767229200,
            "signature": EXAMPLE_SIGNATURE,
        }
    )

    def signed(self) -> Signed:
        """The patient's signature and its deadline."""
        return Signed(self.patient, self.deadline, bytes.fromhex(self.signature[2:]))


class RelayOut(Schema):
    """A relayed change, mined."""

    action: str = Field(description="granted, revoked, guardian_appointed or guardian_removed")
    patient: str
    transaction_hash: str
    block_number: int
    nonce: int = Field(description="the patient's next nonce")

    model_config = camel_config(
        {"action": "granted", "patient": EXAMPLE_PATIENT, "transactionHash": EXAMPLE_TX, "blockNumber": 42, "nonce": 4}
    )


class ConsentOut(Schema):
    """One consent key of the patient and its current state on chain."""

    grantee: str
    grantee_organisation: str | None
    scope: str
    purpose: str
    state: str = Field(description="active, pending (not yet valid), expired or revoked")
    valid_from: int
    valid_until: int
    updated_at: int


class GuardianOut(Schema):
    guardian: str
    valid_until: int = Field(description="0 once removed")
    active: bool


class HistoryEntryOut(Schema):
    """One event about the patient, as the chain recorded it."""

    event: str
    block_number: int
    log_index: int
    transaction_hash: str
    time: int
    fields: dict[str, Any]


class ConsentListOut(Schema):
    """The patient's consents now, their guardians, and the history behind both."""

    patient: str
    consents: list[ConsentOut]
    guardians: list[GuardianOut]
    history: list[HistoryEntryOut]
    indexed_to_block: int | None

    model_config = camel_config(
        {
            "patient": EXAMPLE_PATIENT,
            "consents": [
                {
                    "grantee": EXAMPLE_GRANTEE,
                    "granteeOrganisation": "General Hospital",
                    "scope": "Observation",
                    "purpose": "TREAT",
                    "state": "active",
                    "validFrom": 1767225600,
                    "validUntil": 1798761600,
                    "updatedAt": 1767225700,
                }
            ],
            "guardians": [{"guardian": EXAMPLE_GUARDIAN, "validUntil": 1798761600, "active": True}],
            "history": [
                {
                    "event": "ConsentGranted",
                    "blockNumber": 42,
                    "logIndex": 0,
                    "transactionHash": EXAMPLE_TX,
                    "time": 1767225700,
                    "fields": {
                        "grantee": EXAMPLE_GRANTEE,
                        "scope": "Observation",
                        "purpose": "TREAT",
                        "validFrom": 1767225600,
                        "validUntil": 1798761600,
                        "actor": EXAMPLE_PATIENT,
                    },
                }
            ],
            "indexedToBlock": 42,
        }
    )


class GranteeConsentsOut(Schema):
    """The patient's consents to one organisation (the caller's, or for an admin the one named)."""

    patient: str
    grantee: str
    consents: list[ConsentOut]

    model_config = camel_config(
        {
            "patient": EXAMPLE_PATIENT,
            "grantee": EXAMPLE_GRANTEE,
            "consents": [
                {
                    "grantee": EXAMPLE_GRANTEE,
                    "granteeOrganisation": "General Hospital",
                    "scope": "Observation",
                    "purpose": "TREAT",
                    "state": "active",
                    "validFrom": 1767225600,
                    "validUntil": 1798761600,
                    "updatedAt": 1767225700,
                }
            ],
        }
    )


class ConsentCheckOut(Schema):
    """May ``grantee`` access the patient's ``scope`` data for ``purpose`` now (the contract's answer)?"""

    patient: str
    grantee: str
    scope: str
    purpose: str
    permitted: bool
    reason: str | None = Field(description="why not: no_consent, expired, not_yet_valid or revoked")
    states: dict[str, str] = Field(description="the state of the exact scope's consent and of the '*' consent")
    checked_at: int = Field(description="the chain time the answer holds for")

    model_config = camel_config(
        {
            "patient": EXAMPLE_PATIENT,
            "grantee": EXAMPLE_GRANTEE,
            "scope": "Observation",
            "purpose": "TREAT",
            "permitted": False,
            "reason": "revoked",
            "states": {"Observation": "revoked", "*": "none"},
            "checkedAt": 1767229200,
        }
    )


def relay_json(relayed: Relayed) -> dict[str, Any]:
    """A ``RelayOut``."""
    return {
        "action": relayed.action,
        "patient": relayed.patient,
        "transactionHash": "0x" + relayed.tx_hash.hex(),
        "blockNumber": relayed.block_number,
        "nonce": relayed.nonce,
    }


def history_json(event: IndexedEvent) -> dict[str, Any]:
    """A ``HistoryEntryOut``."""
    return {
        "event": event.event,
        "blockNumber": event.block_number,
        "logIndex": event.log_index,
        "transactionHash": event.tx_hash,
        "time": event.block_time,
        "fields": event.fields,
    }


def consent_json(consent: ConsentNow) -> dict[str, Any]:
    """A ``ConsentOut``."""
    return {
        "grantee": consent.grantee,
        "granteeOrganisation": consent.grantee_organisation,
        "scope": consent.scope,
        "purpose": consent.purpose,
        "state": consent.state.value,
        "validFrom": consent.valid_from,
        "validUntil": consent.valid_until,
        "updatedAt": consent.updated_at,
    }


def overview_json(overview: ConsentOverview) -> dict[str, Any]:
    """A ``ConsentListOut``."""
    return {
        "patient": overview.patient,
        "consents": [consent_json(c) for c in overview.consents],
        "guardians": [
            {"guardian": g.guardian, "validUntil": g.valid_until, "active": g.active} for g in overview.guardians
        ],
        "history": [history_json(e) for e in overview.history],
        "indexedToBlock": overview.indexed_to_block,
    }


def check_json(patient: str, grantee: str, scope: str, purpose: str, decision: ConsentDecision) -> dict[str, Any]:
    """A ``ConsentCheckOut``."""
    return {
        "patient": patient,
        "grantee": grantee,
        "scope": scope,
        "purpose": purpose,
        "permitted": decision.permitted,
        "reason": decision.reason,
        "states": decision.states,
        "checkedAt": decision.checked_at,
    }
