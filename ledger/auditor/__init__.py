"""The auditor's toolkit: check records, receipts and the whole ledger from the chain alone.

Nothing here calls the CareLedger API. The inputs are a chain (a JSON-RPC node, or the embedded
chain's data directory opened read-only), the deployment's contract addresses, receipts and
documents held by the auditor, and optionally a copy of the API's SQLite index to reconcile.

Modules, one idea each:

* :mod:`~ledger.auditor.logs`: read logs by block range (``eth_getLogs`` in chunks, or straight
  from the embedded chain's receipts).
* :mod:`~ledger.auditor.chain_reader`: open a chain and a deployment, pinned at one head block.
* :mod:`~ledger.auditor.receipt_format`: fast receipt parsing and the local (off-chain) checks.
* :mod:`~ledger.auditor.verify`: verifying one receipt (the steps are
  :mod:`ledger.records.verification`'s), chain facts cached.
* :mod:`~ledger.auditor.read_limits`: how much is read from hostile input, and only regular files.
* :mod:`~ledger.auditor.zip_members` and :mod:`~ledger.auditor.tar_members`: members of a zip
  archive read a chunk at a time; a tarball read as one stream.
* :mod:`~ledger.auditor.bulk`: verify folders and archives of receipts in parallel.
* :mod:`~ledger.auditor.replay`: rebuild consent, guardian and anchoring history from events and
  compare it with the contracts' own view functions.
* :mod:`~ledger.auditor.index_check`: reconcile a copy of the API's index with the chain.
* :mod:`~ledger.auditor.report` and :mod:`~ledger.auditor.html_report`: JSON and HTML output.
* :mod:`~ledger.auditor.cli`: the ``careledger-audit`` command.
"""
