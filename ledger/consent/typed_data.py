"""EIP-712 typed data of consent changes and patient sign-in: building, signing, recovering.

The typed data built here is exactly what ``ConsentRegistry`` hashes (a test checks the digests are
equal), so a patient's wallet, this library and the contract agree on what was signed. The domain
binds every signature to one chain id and one registry address; the patient's nonce and a deadline
make each signature usable once and only for a while.
"""

from __future__ import annotations

from typing import Any

from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_keys.exceptions import BadSignature

from ledger.consent.terms import ConsentKey, ConsentSet, GrantTerms
from ledger.exceptions import InvalidSignatureError
from ledger.values import checksum, encode_code

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
    "ConsentGrantSet": [
        {"name": "patient", "type": "address"},
        {"name": "grantee", "type": "address"},
        {"name": "scopes", "type": "bytes32[]"},
        {"name": "purposes", "type": "bytes32[]"},
        {"name": "validFrom", "type": "uint64"},
        {"name": "validUntil", "type": "uint64"},
        {"name": "terms", "type": "bytes32"},
        {"name": "signer", "type": "address"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint256"},
    ],
    "ConsentRevocationSet": [
        {"name": "patient", "type": "address"},
        {"name": "grantee", "type": "address"},
        {"name": "scopes", "type": "bytes32[]"},
        {"name": "purposes", "type": "bytes32[]"},
        {"name": "terms", "type": "bytes32"},
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


def _set_message(consent: ConsentSet) -> dict[str, Any]:
    return {
        "patient": consent.patient,
        "grantee": consent.grantee,
        "scopes": ["0x" + encode_code(s).hex() for s in consent.scopes],
        "purposes": ["0x" + encode_code(p).hex() for p in consent.purposes],
    }


def grant_set_typed_data(
    domain: dict[str, Any], consent: ConsentSet, signer: str, nonce: int, deadline: int
) -> dict[str, Any]:
    """The ``ConsentGrantSet`` typed data that ``signer`` signs to grant a consent document whole."""
    message = {
        **_set_message(consent),
        "validFrom": consent.valid_from,
        "validUntil": consent.valid_until,
        "terms": "0x" + consent.terms.hex(),
        "signer": checksum(signer),
        "nonce": nonce,
        "deadline": deadline,
    }
    return _typed(domain, "ConsentGrantSet", message)


def revocation_set_typed_data(
    domain: dict[str, Any], consent: ConsentSet, signer: str, nonce: int, deadline: int
) -> dict[str, Any]:
    """The ``ConsentRevocationSet`` typed data that ``signer`` signs to withdraw a consent document."""
    message = {
        **_set_message(consent),
        "terms": "0x" + consent.terms.hex(),
        "signer": checksum(signer),
        "nonce": nonce,
        "deadline": deadline,
    }
    return _typed(domain, "ConsentRevocationSet", message)


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
