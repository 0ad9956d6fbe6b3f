"""The off-chain store (SQLite): organisations and apps, records and their batches, audit trail."""

from ledger.store.database import Database, open_database

__all__ = ["Database", "open_database"]
