"""The one boundary to web3: the chain client, the contracts, deployment, signing keys, the event index.

* :mod:`~ledger.chain.client`: :class:`~ledger.chain.client.Chain`, local signing, nonces, fees, and
  the translation of every web3 / eth-tester / transport error into :mod:`ledger.exceptions`.
* :mod:`~ledger.chain.contracts`: the compiled artifacts (``artifacts/``) and custom-error decoding.
* :mod:`~ledger.chain.deployment`: idempotent deployment, recorded and checked against the chain.
* :mod:`~ledger.chain.keys`: the ledger's own keys (admin, relayer, one per organisation), encrypted at rest.
* :mod:`~ledger.chain.events`: the one event reader: raw logs decoded from the ABIs (index, history, auditor).
* :mod:`~ledger.chain.roles`: who held a role when, replayed from the contract's role events.
* :mod:`~ledger.chain.indexer`: the contracts' events copied into the store, so history never scans the chain.
* :mod:`~ledger.chain.embedded`: the embedded eth-tester chain persisted to a data directory.
"""
