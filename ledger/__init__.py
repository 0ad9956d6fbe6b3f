"""CareLedger's core library: consent and record integrity on an EVM chain, importable without the API.

Packages, one subsystem each (their ``__init__`` lists their modules):

* :mod:`ledger.chain`: the one boundary to web3 (client, contracts and artifacts, deployment, keys,
  the event index, the embedded eth-tester chain).
* :mod:`ledger.records`: a record's path: digest and salt, Merkle batch, anchoring, receipt,
  verification; the batcher; amendments and retractions.
* :mod:`ledger.consent`: codes, consent terms, EIP-712 typed data, the registry client, access
  decisions and relaying, the access trail, patient sign-in.
* :mod:`ledger.oauth`: SMART Backend Services: client keys, client assertions, scopes standing
  for roles, short-lived access tokens.
* :mod:`ledger.disclosures`: a patient's accounting of disclosures (HIPAA 164.528) from the access
  trail: the period, the accounting, its printable page.
* :mod:`ledger.fhir`: FHIR R4 views and the facade's meaning: PCF Consents as consent documents,
  access decisions as IHE BALP-shaped ``AuditEvent``s, Provenance of anchored records, the
  CapabilityStatement, OperationOutcome.
* :mod:`ledger.store`: all SQL (SQLite or PostgreSQL), and what an organisation's name may be.
* :mod:`ledger.files`: the data directory's own files (one writer at a time, private to its user).
* :mod:`ledger.auditor`: ``careledger-audit``, which trusts nothing but the chain.

Modules at the root: :mod:`~ledger.exceptions` (the one error hierarchy), :mod:`~ledger.config`
(settings that validate themselves), :mod:`~ledger.values` (shared value types: checksummed
addresses, 32-byte hex, codes), :mod:`~ledger.runtime` (``open_ledger``), :mod:`~ledger.command_line`
(what both CLIs keep: stdout for results, stderr for people, escaped names, ``--version``),
:mod:`~ledger.demo` (``make demo``).

Tuned hot paths, each guarded by a benchmark (change them with it at hand): ``records/hashing.py``
and ``records/merkle.py`` (``bench/merkle_rate.py``), ``store/intake.py`` and ``store/records.py``
(``bench/api_load.py``, ``bench/deployments.py``), ``chain/embedded/`` (``bench/embedded_chain_rate.py``),
``auditor/receipt_format.py``, ``auditor/bulk.py`` and ``auditor/zip_members.py``
(``bench/audit_rate.py``). Everything else may be changed freely, with its tests.
"""
