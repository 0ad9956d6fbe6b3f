"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import time
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import ServiceDep
from ledger.chain.indexer import indexed_to
from ledger.store.records import oldest_pending_at, pending_count

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is up")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="The chain is reachable and the batcher and the chain indexer are running",
    responses={503: {"description": "not ready: the body says which check failed"}},
)
def readyz(service: ServiceDep) -> Response:
    stats = service.batcher.stats
    chain_ok = service.ledger.chain.is_reachable()
    batcher_ok = service.batcher.alive and stats.chain_available
    indexer_ok = service.indexer.alive
    oldest = oldest_pending_at(service.db.conn)
    body: dict[str, Any] = {
        "status": "ready" if chain_ok and batcher_ok and indexer_ok else "not_ready",
        "chain": {"reachable": chain_ok, "chainId": service.ledger.deployment.chain_id},
        "batcher": {
            "running": service.batcher.alive,
            "holdsLock": stats.holds_lock,
            "sharedStore": service.db.shared,
            "lastError": stats.last_error,
            "lastErrorAt": stats.last_error_at,
            "lastAnchorAt": stats.last_success_at,
        },
        "indexer": {
            "running": indexer_ok,
            "indexedToBlock": indexed_to(service.db.conn),
            "lastError": service.indexer.last_error,
        },
        "pendingRecords": pending_count(service.db.conn),
        "oldestPendingSeconds": round(time.time() - oldest, 3) if oldest else 0.0,
    }
    headers = None if body["status"] == "ready" else {"Retry-After": "5"}
    return Response(
        orjson.dumps(body),
        status_code=200 if body["status"] == "ready" else 503,
        media_type="application/json",
        headers=headers,
    )


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
