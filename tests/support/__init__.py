"""Helpers shared by the suite: the chain under test, PostgreSQL, processes, event helpers, paths."""
