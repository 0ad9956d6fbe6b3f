"""The same library over JSON-RPC: the session's anvil node (``anvil_url``), bound to 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_account import Account

from ledger.consent.terms import ConsentKey, GrantTerms
from ledger.consent.typed_data import grant_typed_data, sign_typed_data
from ledger.exceptions import ContractRevertError
from ledger.records.hashing import digest_bytes, new_salt
from ledger.records.receipts import anchor_batch, verify_receipt
from ledger.runtime import open_ledger
from tests.support.chain_under_test import ANVIL_DEV_KEY, ledger_settings


def test_deploy_anchor_and_relay_consent_over_rpc(tmp_path: Path, anvil_url: str) -> None:
    settings = ledger_settings(
        tmp_path / "data", rpc_url=anvil_url, faucet_key=ANVIL_DEV_KEY, keystore_passphrase="test passphrase"
    )
    with open_ledger(settings) as ledger:
        assert ledger.chain.chain_id == 31337
        anchorer = ledger.anchorer()
        receipts = anchor_batch(ledger.anchors, [(new_salt(), digest_bytes(b"%d" % i)) for i in range(9)], anchorer)
        assert all(verify_receipt(r, anchors=ledger.anchors).valid for r in receipts)
        with pytest.raises(ContractRevertError) as caught:
            ledger.anchors.anchor(receipts[0].root, 9, anchorer)
        assert caught.value.error == "RecordAnchorRootAlreadyAnchored"
        assert caught.value.args_by_name["blockNumber"] == receipts[0].block_number

        patient = Account.create()
        now = ledger.chain.block_timestamp("latest")
        terms = GrantTerms(ConsentKey(patient.address, anchorer.address, "*", "TREAT"), now - 1, now + 3600)
        consents = ledger.consents
        typed = grant_typed_data(consents.domain, terms, patient.address, consents.nonce(patient.address), now + 600)
        consents.grant_by_signature(terms, patient.address, now + 600, sign_typed_data(patient, typed), ledger.relayer)
        assert consents.is_permitted(patient.address, anchorer.address, "Condition", "TREAT")
        assert [e.kind for e in consents.history(patient.address)] == ["ConsentGranted"]
    with open_ledger(settings) as reopened:  # the deployment record is reused, not redeployed
        assert reopened.deployment.record_anchor == receipts[0].contract
