"""Relaying patient-signed consent changes: checked locally first, then sent by the relayer.

The relayer pays the gas and holds no role: the patient's (or guardian's) EIP-712 signature is
what authorises the change on chain. What can be refused without a transaction is refused here,
before anything is charged to the patient's budget: malformed codes and windows, a passed
deadline, a signature the signer did not make (EOA or ERC-1271 contract wallet), and a signer who
is neither the patient nor one of the patient's guardians now.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import encode as abi_encode
from eth_account.signers.local import LocalAccount
from web3.types import TxReceipt

from ledger.chain.client import Chain
from ledger.consent.registry import ConsentRegistryClient
from ledger.consent.terms import ConsentKey, ConsentSet, GrantTerms
from ledger.consent.typed_data import (
    grant_set_typed_data,
    grant_typed_data,
    guardian_typed_data,
    recover_signer,
    revocation_set_typed_data,
    revocation_typed_data,
    typed_data_digest,
)
from ledger.exceptions import (
    ChainError,
    ChainUnavailableError,
    InvalidSignatureError,
    NotPatientOrGuardianError,
    SignatureExpiredError,
)
from ledger.values import checksum

ERC1271_SELECTOR = bytes.fromhex("1626ba7e")
"""``isValidSignature(bytes32,bytes)``, and the magic value a wallet answers when it signed."""
ERC1271_MAGIC = ERC1271_SELECTOR

Admit = Callable[[str], None]
"""Called with the patient once a relay passed its local checks, just before sending; may raise to refuse."""


@dataclass(frozen=True)
class Relayed:
    """A relayed change, mined: what it did, for whom, where, and the patient's next nonce."""

    action: str
    patient: str
    tx_hash: bytes
    block_number: int
    nonce: int


@dataclass(frozen=True)
class Signed:
    """Who signed a change, until when the signature holds, and the signature."""

    signer: str
    deadline: int
    signature: bytes


class Relayer:
    """Checks and sends patient-signed changes from the relayer account.

    Args:
        consents: The registry.
        chain: Its chain (for the deadline check and code lookups).
        account: The relayer's key (pays the gas, holds no role).
        after_send: Called after each mined change (the service indexes the new block, so the
            caller's next read shows it).
    """

    def __init__(
        self,
        consents: ConsentRegistryClient,
        chain: Chain,
        account: LocalAccount,
        after_send: Callable[[], None] | None = None,
    ) -> None:
        self.consents = consents
        self.chain = chain
        self.account = account
        self.after_send = after_send

    def grant(self, terms: GrantTerms, signed: Signed, admit: Admit | None = None) -> Relayed:
        """Relay a signed ``ConsentGrant``."""
        consents, signer, deadline, signature = self.consents, signed.signer, signed.deadline, signed.signature
        return self._relay_change(
            "granted",
            terms.key.patient,
            signed,
            admit,
            lambda nonce: grant_typed_data(consents.domain, terms, signer, nonce, deadline),
            lambda: consents.grant_by_signature(terms, signer, deadline, signature, self.account),
        )

    def revoke(self, key: ConsentKey, signed: Signed, admit: Admit | None = None) -> Relayed:
        """Relay a signed ``ConsentRevocation``."""
        consents, signer, deadline, signature = self.consents, signed.signer, signed.deadline, signed.signature
        return self._relay_change(
            "revoked",
            key.patient,
            signed,
            admit,
            lambda nonce: revocation_typed_data(consents.domain, key, signer, nonce, deadline),
            lambda: consents.revoke_by_signature(key, signer, deadline, signature, self.account),
        )

    def grant_set(self, consent: ConsentSet, signed: Signed, admit: Admit | None = None) -> Relayed:
        """Relay a signed ``ConsentGrantSet`` (a consent document granted whole, in one transaction)."""
        consents, signer, deadline, signature = self.consents, signed.signer, signed.deadline, signed.signature
        return self._relay_change(
            "granted",
            consent.patient,
            signed,
            admit,
            lambda nonce: grant_set_typed_data(consents.domain, consent, signer, nonce, deadline),
            lambda: consents.grant_set_by_signature(consent, signer, deadline, signature, self.account),
        )

    def revoke_set(self, consent: ConsentSet, signed: Signed, admit: Admit | None = None) -> Relayed:
        """Relay a signed ``ConsentRevocationSet`` (the withdrawal of a consent document)."""
        consents, signer, deadline, signature = self.consents, signed.signer, signed.deadline, signed.signature
        return self._relay_change(
            "revoked",
            consent.patient,
            signed,
            admit,
            lambda nonce: revocation_set_typed_data(consents.domain, consent, signer, nonce, deadline),
            lambda: consents.revoke_set_by_signature(consent, signer, deadline, signature, self.account),
        )

    def _relay_change(
        self,
        action: str,
        patient: str,
        signed: Signed,
        admit: Admit | None,
        typed_data: Callable[[int], dict[str, Any]],
        send: Callable[[], TxReceipt],
    ) -> Relayed:
        """What every consent change goes through: its typed data at the patient's next nonce, the
        signer the patient or a guardian, the signature checked, then ``admit``, then the transaction."""
        typed = typed_data(self.consents.nonce(patient))
        self._require_actor(patient, signed.signer)
        self._check(typed, signed, patient, admit)
        return self._relayed(action, patient, send())

    def set_guardian(
        self, patient: str, guardian: str, valid_until: int, signed: Signed, admit: Admit | None = None
    ) -> Relayed:
        """Relay a patient-signed ``GuardianAppointment`` (``valid_until`` 0 removes the guardian)."""
        patient, guardian = checksum(patient), checksum(guardian)
        nonce = self.consents.nonce(patient)
        typed = guardian_typed_data(self.consents.domain, patient, guardian, valid_until, nonce, signed.deadline)
        self._check(typed, Signed(patient, signed.deadline, signed.signature), patient, admit)
        receipt = self.consents.set_guardian_by_signature(
            patient, guardian, valid_until, signed.deadline, signed.signature, self.account
        )
        return self._relayed("guardian_removed" if valid_until == 0 else "guardian_appointed", patient, receipt)

    def _require_actor(self, patient: str, signer: str) -> None:
        """The signer of a consent change is the patient, or a guardian whose appointment holds now."""
        if checksum(signer) == checksum(patient):
            return
        if self.consents.guardian_until(patient, signer) <= self.chain.block_timestamp("latest"):
            raise NotPatientOrGuardianError(
                "the signer is neither the patient nor one of the patient's guardians", signer=checksum(signer)
            )

    def _check(self, typed_data: dict[str, Any], signed: Signed, patient: str, admit: Admit | None) -> None:
        check_before_relay(self.chain, typed_data, signed)
        if admit is not None:
            admit(patient)

    def _relayed(self, action: str, patient: str, receipt: TxReceipt) -> Relayed:
        if self.after_send is not None:
            self.after_send()
        return Relayed(
            action,
            patient,
            bytes(receipt["transactionHash"]),
            int(receipt["blockNumber"]),
            self.consents.nonce(patient),
        )


def check_before_relay(chain: Chain, typed_data: dict[str, Any], signed: Signed) -> None:
    """Refuse locally what the chain would refuse: a passed deadline, or a signature the signer did
    not make (an EOA's recovered here, a contract wallet's asked through ERC-1271 ``isValidSignature``
    in an ``eth_call``, exactly as the contract's ``SignatureChecker`` will ask it)."""
    now = chain.block_timestamp("latest")
    if signed.deadline < now:
        raise SignatureExpiredError(
            "the signature's deadline has passed; sign again", deadline=signed.deadline, now=now
        )
    signer = checksum(signed.signer)
    if chain.code_at(signer):
        valid = _wallet_accepts(chain, signer, typed_data_digest(typed_data), signed.signature)
    else:
        valid = recover_signer(typed_data, signed.signature) == signer
    if not valid:
        raise InvalidSignatureError(
            "the signature was not made by the signer (or over other terms or nonce)", signer=signer
        )


def _wallet_accepts(chain: Chain, wallet: str, digest: bytes, signature: bytes) -> bool:
    """ERC-1271: does the contract wallet say it signed ``digest``? A revert or any other answer is no."""
    data = ERC1271_SELECTOR + abi_encode(["bytes32", "bytes"], [digest, signature])
    try:
        answer = chain.call_data(wallet, data)
    except ChainError as err:
        if isinstance(err, ChainUnavailableError):
            raise
        return False
    return answer[:4] == ERC1271_MAGIC and len(answer) == 32 and not any(answer[4:])
