"""Liveness, readiness and Prometheus metrics.

``/readyz`` tells anyone only whether the service is ready (its status code, and ``{"status"}``);
an admin's API key also gets what each part reports, with failures named by their class only (an
exception's text may quote the node's URL and the token in it). Figures are on ``/metrics``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.declared_errors import raises
from api.deps import ServiceDep, bearer_credentials
from api.errors import ErrorBody
from api.openapi import RETRY_AFTER_HEADER
from api.schemas.health import HealthOut, ReadyOut
from api.service import Service
from ledger.exceptions import StoreUnavailableError
from ledger.files.free_space import free_space
from ledger.store.apps import Role
from ledger.store.chain_index import indexed_to
from ledger.store.records import oldest_pending_at, pending_count

router = APIRouter(tags=["health"])
METRICS_MEDIA_TYPE = CONTENT_TYPE_LATEST.partition(";")[0]


@router.get("/healthz", response_model=HealthOut, summary="The process is up")
async def healthz() -> dict[str, str]:
    """On the event loop itself (no thread hop): it answers as soon as the loop is free."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=ReadyOut,
    summary="The chain is reachable, the batcher and the chain indexer are running, and the data directory has room",
    responses={
        503: {
            "model": ReadyOut | ErrorBody,
            "headers": RETRY_AFTER_HEADER,
            "description": "not ready (with an admin's API key, the body says which check failed), or "
            "the store is unavailable (`store_unavailable`)",
        }
    },
    openapi_extra={"security": [{}]},  # the API key is optional: an admin's gets the details
)
@raises(StoreUnavailableError)
def readyz(
    service: ServiceDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_credentials)]
) -> Response:
    stats = service.batcher.stats
    chain_ok = service.ledger.chain.is_reachable()
    batcher_ok = service.batcher.alive and stats.chain_available
    indexer_ok = service.indexer.alive
    disk = free_space(Path(service.settings.data_dir), service.settings.min_free_disk_bytes)
    ready = chain_ok and batcher_ok and indexer_ok and disk.enough
    body: dict[str, Any] = {"status": "ready" if ready else "not_ready"}
    if _is_admin(service, credentials):
        oldest = oldest_pending_at(service.db.conn)
        body |= {
            "chain": {"reachable": chain_ok, "chainId": service.ledger.deployment.chain_id},
            "batcher": {
                "running": service.batcher.alive,
                "holdsLock": stats.holds_lock,
                "sharedStore": service.db.shared,
                "lastError": failure_class(stats.last_error),
                "lastErrorAt": stats.last_error_at,
                "lastAnchorAt": stats.last_success_at,
            },
            "indexer": {
                "running": indexer_ok,
                "indexedToBlock": indexed_to(service.db.conn),
                "lastError": failure_class(service.indexer.last_error),
            },
            "disk": {"enough": disk.enough, "freeBytes": disk.free_bytes, "minFreeBytes": disk.min_free_bytes},
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


def _is_admin(service: Service, credentials: HTTPAuthorizationCredentials | None) -> bool:
    """Whether the caller holds a live admin app's key (no key, or another one: the public answer)."""
    if credentials is None:
        return False
    app = service.app_keys.lookup(service.db.conn, credentials.credentials)
    return app is not None and Role.ADMIN in app.roles


def failure_class(error: str | None) -> str | None:
    """A worker's last error (``"ClassName: text"``) as its class alone: the text may quote a URL."""
    return error.partition(":")[0] if error else None


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {METRICS_MEDIA_TYPE: {"schema": {"type": "string"}}}}},
)
def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
