"""Record integrity: digests and salts, Merkle batches, anchoring, receipts and their verification.

The path of a record, in the order of these modules:

* :mod:`~ledger.records.strict_json`: the one strict JSON parser documents are hashed from (the API
  and the auditor alike): duplicate keys and numbers a double would round are refused.
* :mod:`~ledger.records.hashing`: digest (RFC 8785 / SHA-256), salt, commitment and leaf. Hot path
  (``bench/merkle_rate.py``).
* :mod:`~ledger.records.fhir`: FHIR validation of documents before they are registered.
* :mod:`~ledger.records.payloads`: a request's payload (document, base64 content or digest) to its
  digest, for registering and for verifying alike.
* :mod:`~ledger.records.merkle`: OpenZeppelin StandardMerkleTree roots and proofs. Hot path, built in C
  (``bench/merkle_rate.py``).
* :mod:`~ledger.records.batcher`: the durable worker that seals pending records into batches and
  anchors each root once.
* :mod:`~ledger.records.anchoring`: the RecordAnchor client (anchor, amend, retract, read).
* :mod:`~ledger.records.receipts`: the portable receipt, issuing it, and verifying it (the API's
  way: :func:`~ledger.records.receipts.verify_receipt`).
* :mod:`~ledger.records.verification`: the one verifier: every step's name and texts, in order,
  ``Check`` and ``Verification``, and the step checks both the API and the auditor run.
* :mod:`~ledger.records.lifecycle`: a stored record's stage (pending, sealed, confirming, anchored)
  and its receipt once final.
* :mod:`~ledger.records.changes`: amendments and retractions: who may request one, and the request.
* :mod:`~ledger.records.lookup`: where records with a digest stand in this service's store
  (verifying without a receipt).
"""
