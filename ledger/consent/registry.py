"""The ConsentRegistry client: relay and send consent changes, read consents, guardians and history."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.types import BlockIdentifier, TxReceipt

from ledger.chain.client import Chain
from ledger.chain.contracts import CONSENT_EVENTS, CONSENT_REGISTRY, load_artifact
from ledger.chain.events import decode_log, event_topic, raw_log, topics_of
from ledger.consent.codes import encode_purpose
from ledger.consent.terms import ConsentKey, ConsentRecord, ConsentSet, GrantTerms, consent_state
from ledger.consent.typed_data import eip712_domain
from ledger.values import checksum, decode_code, encode_code

EMERGENCY_ROLE = Web3.keccak(text="EMERGENCY_ROLE")
"""The role that may record break-glass access (``ConsentRegistry.EMERGENCY_ROLE``)."""
SIGNATURE_LENGTH = 65
"""Bytes of an EOA's ECDSA signature (r, s, v); a contract wallet's may be any length."""


@dataclass(frozen=True)
class ConsentEvent:
    """One entry of a patient's consent history as the chain recorded it."""

    kind: str
    patient: str
    block_number: int
    tx_hash: str
    log_index: int
    fields: dict[str, Any]


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
        self._emergency_purposes: frozenset[str] | None = None

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

    def grant_set_by_signature(
        self, consent: ConsentSet, signer: str, deadline: int, signature: bytes, relayer: LocalAccount
    ) -> TxReceipt:
        """Relay a signed consent document (every key of it, in one transaction); the relayer pays the gas."""
        fn = self.contract.functions.grantSetBySig(
            consent.as_grant_set_request(), checksum(signer), deadline, signature
        )
        return self.chain.transact(fn, relayer)

    def revoke_set_by_signature(
        self, consent: ConsentSet, signer: str, deadline: int, signature: bytes, relayer: LocalAccount
    ) -> TxReceipt:
        """Relay a signed withdrawal of a consent document (its keys still granted are revoked)."""
        fn = self.contract.functions.revokeSetBySig(
            consent.as_revoke_set_request(), checksum(signer), deadline, signature
        )
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

    def has_emergency_role(self, account: str) -> bool:
        """Whether ``account`` may record break-glass access (holds ``EMERGENCY_ROLE``)."""
        return bool(self.chain.call(self.contract.functions.hasRole(EMERGENCY_ROLE, checksum(account))))

    def grant_emergency(self, admin: LocalAccount, account: str) -> None:
        """Give an organisation's account the break-glass right (the admin holds the admin role)."""
        if not self.has_emergency_role(account):
            self.chain.transact(self.contract.functions.grantRole(EMERGENCY_ROLE, checksum(account)), admin)

    def revoke_emergency(self, admin: LocalAccount, account: str) -> None:
        """Take an organisation's break-glass right away."""
        self.chain.transact(self.contract.functions.revokeRole(EMERGENCY_ROLE, checksum(account)), admin)

    def record_emergency_access(
        self, accessor: LocalAccount, patient: str, scope: str, purpose: str, reason: str
    ) -> TxReceipt:
        """Record a break-glass access for an emergency ``purpose`` (the accessor holds ``EMERGENCY_ROLE``;
        the purpose goes on chain with the access)."""
        fn = self.contract.functions.recordEmergencyAccess(
            checksum(patient), encode_code(scope), encode_code(purpose), encode_code(reason)
        )
        return self.chain.transact(fn, accessor)

    def emergency_purposes(self) -> frozenset[str]:
        """The purposes break-glass access may be recorded for, as the registry holds them (set at
        deployment and never changed, so read once)."""
        if self._emergency_purposes is None:
            codes = self.chain.call(self.contract.functions.emergencyPurposes())
            self._emergency_purposes = frozenset(decode_code(bytes(code)) for code in codes)
        return self._emergency_purposes

    # --- reading ---------------------------------------------------------------------------

    def is_permitted(
        self, patient: str, grantee: str, scope: str, purpose: str, *, block: BlockIdentifier = "latest"
    ) -> bool:
        """The contract's own answer: may ``grantee`` access ``scope`` data for ``purpose`` at ``block``
        (by that block's time; default: the newest block)?"""
        fn = self.contract.functions.isPermitted(
            checksum(patient), checksum(grantee), encode_code(scope), encode_purpose(purpose)
        )
        return bool(self.chain.call(fn, block))

    def consent_of(
        self, key: ConsentKey, as_of: int | None = None, *, block: BlockIdentifier = "latest"
    ) -> ConsentRecord:
        """The state of a consent stored at ``block`` (default: the newest) and what it means at
        ``as_of`` (default: that block's time)."""
        fn = self.contract.functions.consentOf(*key.as_revoke_request())
        valid_from, valid_until, updated_at, status = self.chain.call(fn, block)
        now = self.chain.block_timestamp(block) if as_of is None else as_of
        return ConsentRecord(
            key, valid_from, valid_until, updated_at, consent_state(status, valid_from, valid_until, now)
        )

    def stored_consent(self, patient: str, grantee: str, scope: bytes, purpose: bytes) -> tuple[int, int, int, int]:
        """``consentOf`` as stored, for codes given as raw bytes32 (any code, even one the library
        would refuse to encode): ``(valid_from, valid_until, updated_at, status)``."""
        fn = self.contract.functions.consentOf(checksum(patient), checksum(grantee), scope, purpose)
        valid_from, valid_until, updated_at, status = self.chain.call(fn)
        return int(valid_from), int(valid_until), int(updated_at), int(status)

    def guardian_until(self, patient: str, guardian: str) -> int:
        """When the guardian's appointment ends (0 if not appointed)."""
        return int(self.chain.call(self.contract.functions.guardianUntil(checksum(patient), checksum(guardian))))

    def history(self, patient: str) -> list[ConsentEvent]:
        """Every consent, guardian and break-glass event about a patient, in chain order (a chain scan
        from the deploy block: the service reads the chain index instead)."""
        patient = checksum(patient)
        patient_topic = "0x" + bytes(12).hex() + patient[2:].lower()
        entries = self.chain.get_logs(
            {
                "fromBlock": self.deploy_block,
                "toBlock": "latest",
                "address": self.address,
                "topics": [["0x" + t.hex() for t in sorted(topics_of(*CONSENT_EVENTS))], patient_topic],
            }
        )
        events = []
        for entry in entries:
            log = raw_log(entry)
            decoded = decode_log(log, CONSENT_REGISTRY)
            if decoded is None:
                continue
            events.append(
                ConsentEvent(
                    kind=decoded.name,
                    patient=patient,
                    block_number=log.block_number,
                    tx_hash="0x" + log.tx_hash.hex(),
                    log_index=log.log_index,
                    fields={k: _readable(k, v) for k, v in decoded.args.items() if k != "patient"},
                )
            )
        events.sort(key=lambda e: (e.block_number, e.log_index))
        return events

    def set_grant_of(
        self, patient: str, grantee: str, terms: bytes, signature: bytes, *, from_block: int, to_block: int
    ) -> tuple[bytes, int] | None:
        """The transaction mined in blocks ``from_block``..``to_block`` that granted the consent
        document ``terms`` of ``patient`` to ``grantee`` on ``signature``: its hash and block, or None.

        The node filters ``ConsentSetGranted`` by its three indexed arguments; of the transactions
        found, the one that carried ``signature`` is the grant (a patient who signed the same terms
        twice granted them twice, each time on another signature)."""
        entries = self.chain.get_logs(
            {
                "fromBlock": from_block,
                "toBlock": to_block,
                "address": self.address,
                "topics": [
                    "0x" + event_topic("ConsentSetGranted").hex(),
                    _address_topic(patient),
                    _address_topic(grantee),
                    "0x" + terms.hex(),
                ],
            }
        )
        for entry in entries:
            log = raw_log(entry)
            if self._carries(self.chain.transaction_input(log.tx_hash), signature):
                return log.tx_hash, log.block_number
        return None

    def _carries(self, calldata: bytes, signature: bytes) -> bool:
        """Whether a transaction's calldata relayed ``signature``: a ``grantSetBySig`` call with it,
        or (sent through a wallet or another contract) calldata holding it whole."""
        try:
            function, args = self.contract.decode_function_input(calldata)
        except ValueError:  # not a call of the registry itself
            return len(signature) >= SIGNATURE_LENGTH and signature in calldata
        return bool(function.fn_name == "grantSetBySig" and bytes(args["signature"]) == signature)


def _address_topic(address: str) -> str:
    """An address as an indexed event argument (left-padded to 32 bytes)."""
    return "0x" + bytes(12).hex() + checksum(address)[2:].lower()


def _readable(name: str, value: Any) -> Any:
    if name in ("scope", "purpose", "reason") and isinstance(value, bytes):
        return decode_code(value)
    return value
