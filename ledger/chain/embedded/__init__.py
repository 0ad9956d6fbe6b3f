"""The embedded chain: eth-tester over py-evm, persisted in ``<data_dir>/chain.sqlite3``.

* :mod:`~ledger.chain.embedded.backend`: the persistent py-evm backend and :func:`open_embedded_web3`.
* :mod:`~ledger.chain.embedded.kv_store`: the key-value store py-evm writes through, one SQLite
  transaction per py-evm batch (safe under ``kill -9``). Tuned: ``bench/embedded_chain_rate.py``.
"""
