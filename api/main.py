"""The FastAPI application: ``create_app(settings)``; ``uvicorn --factory api.main:app`` serves it from the
environment (``careledger serve`` does that with its options)."""

from __future__ import annotations

import gc
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import log_redaction, routes
from api.errors import install_error_handlers
from api.limits import BULK_REGISTRATION_PATH, BodySizeLimit
from api.metrics import Metrics, RequestMetrics
from api.openapi import TAGS, DocumentedApp, operation_id
from api.service import Service
from ledger.config import Settings

DESCRIPTION = """
CareLedger anchors salted commitments to clinical records on an EVM chain and relays patients'
signed consent. Authenticate with `Authorization: Bearer <API key>`; `/healthz`, `/readyz`,
`/metrics` and `POST /v1/verify` are public. Errors are `{"code", "message", "details"}` with stable codes.
"""

SWITCH_INTERVAL_SECONDS = 0.001
"""How long a thread may hold the interpreter while another waits (Python's default: 5 ms). The
server sets it lower: CPU-heavy work runs in the CPU pool's threads, and the event loop, which
waits for the interpreter each time it wakes, then gets it back within a millisecond."""


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; the ledger, store and batcher open when it starts and close when it stops."""
    settings = settings or Settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = Service.open(settings, on_anchored=lambda batch: metrics.batch_size.observe(batch.leaf_count))
        service.start()
        metrics.watch(service)
        app.state.service = service
        # web3 and py-evm leave a large heap of long-lived objects: move it out of the collector's way,
        # so that garbage collection on the request path scans only what requests allocate.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await service.stop()

    app = DocumentedApp(
        title="CareLedger",
        version="0.1.0",
        description=DESCRIPTION,
        openapi_tags=TAGS,
        generate_unique_id_function=operation_id,
        lifespan=lifespan,
        docs_url=None,  # served by api.routes.docs, with the assets from the package
        redoc_url=None,
    )
    app.state.metrics = metrics
    install_error_handlers(app)
    for router in routes.ROUTERS:
        app.include_router(router)
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_body_bytes,
        by_path={BULK_REGISTRATION_PATH: settings.max_bulk_body_bytes},
    )
    app.add_middleware(RequestMetrics, metrics=metrics)
    return app


def app() -> FastAPI:
    """Factory for ``uvicorn --factory api.main:app`` (settings from ``CARELEDGER_*``)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = Settings()
    log_redaction.install(settings)  # uvicorn configured its loggers before calling this factory
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
    return create_app(settings)
