"""The off-chain store: every SQL statement of CareLedger lives in this package.

SQLite in the data directory (one API process) or PostgreSQL (several replicas), one dialect of SQL
written once (:mod:`~ledger.store.postgres` adapts it).

* :mod:`~ledger.store.database`: opening, migrating, transactions (``with_tx``, ``rollback``).
* :mod:`~ledger.store.migration_files`, ``migrations/``, ``migrations_postgres/``: numbered schema files.
* :mod:`~ledger.store.intake`: the group commit every acknowledged write goes through. Hot path
  (``bench/api_load.py``, ``bench/deployments.py``).
* :mod:`~ledger.store.records`: records, batches, sealing, record ids. Hot path (same benchmarks).
* :mod:`~ledger.store.changes`: requested and sent amendments and retractions.
* :mod:`~ledger.store.chain_index`: the contracts' events as indexed (written by :mod:`ledger.chain.indexer`).
* :mod:`~ledger.store.access_trail`: access attempts, read by patient and/or organisation.
* :mod:`~ledger.store.apps`: organisations, apps and their API keys.
* :mod:`~ledger.store.oauth`: SMART clients' keys, spent client-assertion ids, access tokens.
* :mod:`~ledger.store.idempotency`: stored answers of ``Idempotency-Key`` requests.
* :mod:`~ledger.store.locks`: the one batcher among replicas, one sender per chain account.
* :mod:`~ledger.store.shared_files`: write-once files (encrypted keys, the deployment record), in
  the data directory or, with replicas, in the database.
* :mod:`~ledger.store.export`: a consistent SQLite copy for ``careledger-audit audit --index``.
"""

from ledger.store.database import Database, open_database

__all__ = ["Database", "open_database"]
