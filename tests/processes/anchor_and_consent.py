"""Child process for the persistence tests: anchors records and grants consent until killed.

Prints one JSON line per fact the chain acknowledged (a receipt, a granted consent), flushed
before going on, so the parent knows exactly what must survive a SIGKILL.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from eth_account import Account

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ledger.consent.terms import ConsentKey, GrantTerms
from ledger.consent.typed_data import grant_typed_data, sign_typed_data
from ledger.records.hashing import digest_json, new_salt
from ledger.records.receipts import anchor_batch
from ledger.runtime import open_ledger
from tests.conftest import ledger_settings


def main(data_dir: str) -> None:
    with open_ledger(ledger_settings(Path(data_dir))) as ledger:
        anchorer = ledger.anchorer()
        n = 0
        while True:
            n += 1
            records = [(new_salt(), digest_json({"resourceType": "Observation", "id": f"{n}-{i}"})) for i in range(3)]
            for receipt in anchor_batch(ledger.anchors, records, anchorer):
                print(json.dumps({"receipt": receipt.to_dict()}), flush=True)
            patient = Account.create()
            now = int(time.time())
            terms = GrantTerms(
                ConsentKey(patient.address, anchorer.address, "Observation", "TREAT"),
                valid_from=now - 60,
                valid_until=now + 86_400,
            )
            nonce = ledger.consents.nonce(patient.address)
            deadline = now + 600
            typed = grant_typed_data(ledger.consents.domain, terms, patient.address, nonce, deadline)
            ledger.consents.grant_by_signature(
                terms, patient.address, deadline, sign_typed_data(patient, typed), ledger.relayer
            )
            print(json.dumps({"consent": {"patient": patient.address, "grantee": anchorer.address}}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
