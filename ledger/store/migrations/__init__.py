"""Numbered SQL migrations of the off-chain store."""
