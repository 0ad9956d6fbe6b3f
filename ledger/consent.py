"""Patient consent: EIP-712 typed data, local signing and recovery, and the ConsentRegistry client.

The typed data built here is exactly what ``ConsentRegistry`` hashes (a test checks the digests are
equal), so a patient's wallet, this library and the contract agree on what was signed. The domain
binds every signature to one chain id and one registry address; the patient's nonce and a deadline
make each signature usable once and only for a while.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_keys.exceptions import BadSignature
from web3.types import TxReceipt

from ledger.chain import Chain, checksum
from ledger.codes import ALL_DATA, decode_code, encode_code, encode_purpose
from ledger.contracts import CONSENT_REGISTRY, load_artifact
from ledger.exceptions import InputError, InvalidSignatureError

DOMAIN_NAME = "CareLedger ConsentRegistry"
DOMAIN_VERSION = "1"
SECP256K1_HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0

EIP712_DOMAIN_TYPE = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]

CONSENT_TYPES: dict[str, list[dict[str, str]]] = {
    "ConsentGrant": [
        {"name": "patient", "type": "address"},
        {"name": "grantee", "type": "address"},
        {"name": "scope", "type": "bytes32"},
        {"name": "purpose", "type": "bytes32"},
        {"name": "validFrom", "type": "uint64"},
        {"name": "validUntil", "type": "uint64"},
        {"name": "signer", "type": "address"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint256"},
    ],
    "ConsentRevocation": [
        {"name": "patient", "type": "address"},
        {"name": "grantee", "type": "address"},
        {"name": "scope", "type": "bytes32"},
        {"name": "purpose", "type": "bytes32"},
        {"name": "signer", "type": "address"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint256"},
    ],
    "GuardianAppointment": [
        {"name": "patient", "type": "address"},
        {"name": "guardian", "type": "address"},
        {"name": "validUntil", "type": "uint64"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint256"},
    ],
}

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


@dataclass(frozen=True)
class ConsentEvent:
    """One entry of a patient's consent history as the chain recorded it."""

    kind: str
    patient: str
    block_number: int
    tx_hash: str
    log_index: int
    fields: dict[str, Any]


# --- typed data ------------------------------------------------------------------------------


def eip712_domain(chain_id: int, registry: str) -> dict[str, Any]:
    """The EIP-712 domain of a ConsentRegistry deployment."""
    return {
        "name": DOMAIN_NAME,
        "version": DOMAIN_VERSION,
        "chainId": chain_id,
        "verifyingContract": checksum(registry),
    }


def _typed(domain: dict[str, Any], primary: str, message: dict[str, Any]) -> dict[str, Any]:
    return {
        "types": {"EIP712Domain": EIP712_DOMAIN_TYPE, primary: CONSENT_TYPES[primary]},
        "primaryType": primary,
        "domain": domain,
        "message": message,
    }


def grant_typed_data(
    domain: dict[str, Any], terms: GrantTerms, signer: str, nonce: int, deadline: int
) -> dict[str, Any]:
    """The ``ConsentGrant`` typed data that ``signer`` signs (for ``eth_signTypedData_v4``)."""
    key = terms.key
    return _typed(
        domain,
        "ConsentGrant",
        {
            "patient": key.patient,
            "grantee": key.grantee,
            "scope": "0x" + encode_code(key.scope).hex(),
            "purpose": "0x" + encode_code(key.purpose).hex(),
            "validFrom": terms.valid_from,
            "validUntil": terms.valid_until,
            "signer": checksum(signer),
            "nonce": nonce,
            "deadline": deadline,
        },
    )


def revocation_typed_data(
    domain: dict[str, Any], key: ConsentKey, signer: str, nonce: int, deadline: int
) -> dict[str, Any]:
    """The ``ConsentRevocation`` typed data that ``signer`` signs."""
    return _typed(
        domain,
        "ConsentRevocation",
        {
            "patient": key.patient,
            "grantee": key.grantee,
            "scope": "0x" + encode_code(key.scope).hex(),
            "purpose": "0x" + encode_code(key.purpose).hex(),
            "signer": checksum(signer),
            "nonce": nonce,
            "deadline": deadline,
        },
    )


def guardian_typed_data(
    domain: dict[str, Any], patient: str, guardian: str, valid_until: int, nonce: int, deadline: int
) -> dict[str, Any]:
    """The ``GuardianAppointment`` typed data the patient signs (``valid_until`` 0 removes)."""
    return _typed(
        domain,
        "GuardianAppointment",
        {
            "patient": checksum(patient),
            "guardian": checksum(guardian),
            "validUntil": valid_until,
            "nonce": nonce,
            "deadline": deadline,
        },
    )


def typed_data_digest(typed_data: dict[str, Any]) -> bytes:
    """The 32-byte EIP-712 digest (``keccak256("\\x19\\x01" || domainSeparator || structHash)``)."""
    return bytes(_hash_eip191_message(encode_typed_data(full_message=typed_data)))


def sign_typed_data(account: LocalAccount, typed_data: dict[str, Any]) -> bytes:
    """Sign typed data with a local key (65 bytes, r || s || v, low-s)."""
    return bytes(account.sign_typed_data(full_message=typed_data).signature)


def recover_signer(typed_data: dict[str, Any], signature: bytes) -> str:
    """The EOA that made ``signature`` over ``typed_data``.

    Rejects what the contract rejects: lengths other than 65, ``v`` not 27/28, and malleable
    high-``s`` signatures (EIP-2).
    """
    if len(signature) != 65:
        raise InvalidSignatureError(f"signature must be 65 bytes, got {len(signature)}")
    s = int.from_bytes(signature[32:64], "big")
    if s > SECP256K1_HALF_N:
        raise InvalidSignatureError("signature has a high s value (malleable); use its low-s form")
    if signature[64] not in (27, 28):
        raise InvalidSignatureError(f"signature v must be 27 or 28, got {signature[64]}")
    try:
        return str(Account.recover_message(encode_typed_data(full_message=typed_data), signature=signature))
    except (BadSignature, ValueError) as err:
        raise InvalidSignatureError(f"signature does not recover: {err}") from err


# --- the registry ----------------------------------------------------------------------------


class ConsentRegistryClient:
    """Reads and writes one ConsentRegistry deployment.

    Args:
        chain: The chain it is deployed on.
        address: The registry's address.
        deploy_block: The block it was deployed in (history is read from there).
    """

    def __init__(self, chain: Chain, address: str, deploy_block: int = 0) -> None:
        self.chain = chain
        self.address = checksum(address)
        self.deploy_block = deploy_block
        self.contract = chain.contract(load_artifact(CONSENT_REGISTRY), self.address)

    @property
    def domain(self) -> dict[str, Any]:
        """This deployment's EIP-712 domain."""
        return eip712_domain(self.chain.chain_id, self.address)

    def nonce(self, patient: str) -> int:
        """The patient's next signature nonce."""
        return int(self.chain.call(self.contract.functions.nonces(checksum(patient))))

    # --- writing ---------------------------------------------------------------------------

    def grant(self, terms: GrantTerms, sender: LocalAccount) -> TxReceipt:
        """Grant, sent by the patient or a guardian."""
        return self.chain.transact(self.contract.functions.grant(terms.as_grant_request()), sender)

    def revoke(self, key: ConsentKey, sender: LocalAccount) -> TxReceipt:
        """Revoke, sent by the patient or a guardian."""
        return self.chain.transact(self.contract.functions.revoke(key.as_revoke_request()), sender)

    def grant_by_signature(
        self, terms: GrantTerms, signer: str, deadline: int, signature: bytes, relayer: LocalAccount
    ) -> TxReceipt:
        """Relay a signed grant; the relayer pays the gas. Nothing is sent if it would revert."""
        fn = self.contract.functions.grantBySig(terms.as_grant_request(), checksum(signer), deadline, signature)
        return self.chain.transact(fn, relayer)

    def revoke_by_signature(
        self, key: ConsentKey, signer: str, deadline: int, signature: bytes, relayer: LocalAccount
    ) -> TxReceipt:
        """Relay a signed revocation; the relayer pays the gas."""
        fn = self.contract.functions.revokeBySig(key.as_revoke_request(), checksum(signer), deadline, signature)
        return self.chain.transact(fn, relayer)

    def appoint_guardian(self, patient: LocalAccount, guardian: str, valid_until: int) -> TxReceipt:
        """The patient appoints a guardian directly."""
        return self.chain.transact(self.contract.functions.appointGuardian(checksum(guardian), valid_until), patient)

    def remove_guardian(self, patient: LocalAccount, guardian: str) -> TxReceipt:
        """The patient removes a guardian directly."""
        return self.chain.transact(self.contract.functions.removeGuardian(checksum(guardian)), patient)

    def set_guardian_by_signature(
        self,
        patient: str,
        guardian: str,
        valid_until: int,
        deadline: int,
        signature: bytes,
        relayer: LocalAccount,
    ) -> TxReceipt:
        """Relay a patient-signed guardian appointment (``valid_until`` 0 removes)."""
        fn = self.contract.functions.setGuardianBySig(
            checksum(patient), checksum(guardian), valid_until, deadline, signature
        )
        return self.chain.transact(fn, relayer)

    def record_emergency_access(self, accessor: LocalAccount, patient: str, scope: str, reason: str) -> TxReceipt:
        """Record a break-glass access (the accessor holds ``EMERGENCY_ROLE``)."""
        fn = self.contract.functions.recordEmergencyAccess(checksum(patient), encode_code(scope), encode_code(reason))
        return self.chain.transact(fn, accessor)

    # --- reading ---------------------------------------------------------------------------

    def is_permitted(self, patient: str, grantee: str, scope: str, purpose: str) -> bool:
        """The contract's own answer: may ``grantee`` access ``scope`` data for ``purpose`` now?"""
        fn = self.contract.functions.isPermitted(
            checksum(patient), checksum(grantee), encode_code(scope), encode_purpose(purpose)
        )
        return bool(self.chain.call(fn))

    def consent_of(self, key: ConsentKey, as_of: int | None = None) -> ConsentRecord:
        """The stored state of a consent and what it means at ``as_of`` (default: now)."""
        fn = self.contract.functions.consentOf(*key.as_revoke_request())
        valid_from, valid_until, updated_at, status = self.chain.call(fn)
        now = self.chain.block_timestamp("latest") if as_of is None else as_of
        return ConsentRecord(
            key, valid_from, valid_until, updated_at, consent_state(status, valid_from, valid_until, now)
        )

    def guardian_until(self, patient: str, guardian: str) -> int:
        """When the guardian's appointment ends (0 if not appointed)."""
        return int(self.chain.call(self.contract.functions.guardianUntil(checksum(patient), checksum(guardian))))

    def history(self, patient: str) -> list[ConsentEvent]:
        """Every consent, guardian and break-glass event about a patient, in chain order."""
        patient = checksum(patient)
        events: list[ConsentEvent] = []
        kinds = ("ConsentGranted", "ConsentRevoked", "GuardianAppointed", "GuardianRemoved", "EmergencyAccessRecorded")
        with self.chain.io():
            for kind in kinds:
                event = getattr(self.contract.events, kind)
                for log in event.get_logs(from_block=self.deploy_block, argument_filters={"patient": patient}):
                    events.append(
                        ConsentEvent(
                            kind=kind,
                            patient=patient,
                            block_number=log["blockNumber"],
                            tx_hash=log["transactionHash"].to_0x_hex(),
                            log_index=log["logIndex"],
                            fields={k: _readable(k, v) for k, v in log["args"].items() if k != "patient"},
                        )
                    )
        events.sort(key=lambda e: (e.block_number, e.log_index))
        return events


def consent_state(status: int, valid_from: int, valid_until: int, now: int) -> ConsentState:
    """Interpret a stored consent at time ``now``, as ``isPermitted`` does."""
    if status == 0:
        return ConsentState.NONE
    if status == 2:
        return ConsentState.REVOKED
    if now < valid_from:
        return ConsentState.PENDING
    if now >= valid_until:
        return ConsentState.EXPIRED
    return ConsentState.ACTIVE


def _readable(name: str, value: Any) -> Any:
    if name in ("scope", "purpose", "reason") and isinstance(value, bytes):
        return decode_code(value)
    return value


__all__ = [
    "ALL_DATA",
    "ConsentEvent",
    "ConsentKey",
    "ConsentRecord",
    "ConsentRegistryClient",
    "ConsentState",
    "GrantTerms",
    "eip712_domain",
    "grant_typed_data",
    "guardian_typed_data",
    "recover_signer",
    "revocation_typed_data",
    "sign_typed_data",
    "typed_data_digest",
]
