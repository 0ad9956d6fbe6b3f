"""The same auditor over JSON-RPC: a real anvil node (block-wide log indices, historical state)."""

from __future__ import annotations

import json
from pathlib import Path

from eth_account import Account

from ledger.auditor.chain_reader import open_reader
from ledger.auditor.cli import run_audit
from ledger.auditor.logs import Web3LogSource
from ledger.auditor.verify import ChainFacts, verify_one
from ledger.consent.terms import ConsentKey, GrantTerms
from ledger.records.hashing import digest_bytes, new_salt
from ledger.records.receipts import anchor_batch
from ledger.runtime import open_ledger
from tests.support.chain_under_test import ANVIL_DEV_KEY, ledger_settings


def test_verify_and_audit_over_anvil(tmp_path: Path, anvil_url: str) -> None:
    settings = ledger_settings(
        tmp_path / "data", rpc_url=anvil_url, faucet_key=ANVIL_DEV_KEY, keystore_passphrase="test passphrase"
    )
    with open_ledger(settings) as ledger:
        anchorer = ledger.anchorer()
        receipts = anchor_batch(ledger.anchors, [(new_salt(), digest_bytes(b"%d" % i)) for i in range(5)], anchorer)
        patient = Account.create()
        ledger.chain.fund(patient.address, 10**18)
        now = ledger.chain.block_timestamp("latest")
        key = ConsentKey(patient.address, anchorer.address, "*", "TREAT")
        ledger.consents.grant(GrantTerms(key, now - 1, now + 3600), patient)
        ledger.consents.revoke(key, patient)

    with open_reader(rpc_url=anvil_url, data_dir=settings.data_dir) as reader:
        assert isinstance(reader.source, Web3LogSource) and reader.chain_id == 31337
        facts = ChainFacts(reader)
        outcome = verify_one(receipts[3].to_json(), document_digest=digest_bytes(b"3"), facts=facts)
        assert outcome.valid, [c for c in outcome.checks if not c.ok]
        tampered = {**receipts[3].to_dict(), "anchorer": patient.address}
        assert verify_one(json.dumps(tampered), facts=facts).failing_step == "anchored"  # not that account's
        report = run_audit(reader, None)
        assert report.clean, report.discrepancies
        assert report.history.event_counts()["ConsentRevoked"] == 1
        assert report.consent_states() == {"revoked": 1}
