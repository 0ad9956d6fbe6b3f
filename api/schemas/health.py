"""Liveness and readiness answers."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from api.schemas.common import Schema, camel_config


class HealthOut(Schema):
    status: Literal["ok"]


class ChainReadyOut(Schema):
    reachable: bool
    chain_id: int


class BatcherReadyOut(Schema):
    running: bool
    holds_lock: bool = Field(description="this replica anchors (it holds the batcher lock)")
    shared_store: bool
    last_error: str | None = Field(description="the class of the last failure, never its text")
    last_error_at: float | None
    last_anchor_at: float | None


class IndexerReadyOut(Schema):
    running: bool
    indexed_to_block: int | None
    last_error: str | None = Field(description="the class of the last failure, never its text")


class DiskReadyOut(Schema):
    enough: bool = Field(description="the data directory's filesystem has at least `minFreeBytes` free")
    free_bytes: int
    min_free_bytes: int = Field(description="the setting `CARELEDGER_MIN_FREE_DISK_BYTES`")


class ReadyOut(Schema):
    """Ready or not; with an admin's API key, also what each part reports."""

    status: Literal["ready", "not_ready"]
    chain: ChainReadyOut | None = None
    batcher: BatcherReadyOut | None = None
    indexer: IndexerReadyOut | None = None
    disk: DiskReadyOut | None = None
    pending_records: int | None = None
    oldest_pending_seconds: float | None = None

    model_config = camel_config({"status": "ready"})
