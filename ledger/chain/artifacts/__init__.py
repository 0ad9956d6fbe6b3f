"""Compiled contract artifacts (written by scripts/compile_contracts.py)."""
