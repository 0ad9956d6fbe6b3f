"""The FastAPI application: ``create_app(settings)``; ``uvicorn api.main:app`` runs it from the environment."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api.errors import install_error_handlers
from api.limits import BodySizeLimit
from api.metrics import Metrics, RequestMetrics
from api.routes import access, admin, audit, consent, health, patient, patient_page, records, verify
from api.service import Service
from ledger.config import Settings
from ledger.store.intake import Intake

DESCRIPTION = """
CareLedger anchors salted commitments to clinical records on an EVM chain and relays patients'
signed consent. Authenticate with `Authorization: Bearer <API key>`; `/healthz`, `/readyz`,
`/metrics` and `POST /v1/verify` are public. Errors are `{"code", "message", "details"}` with stable codes.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; the ledger, store and batcher open when it starts and close when it stops."""
    settings = settings or Settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = Service.open(settings)
        service.batcher.on_anchored = lambda batch: metrics.batch_size.observe(batch.leaf_count)
        service.intake = Intake(service.db, on_committed=service.batcher.records_arrived)
        service.intake.start()
        service.batcher.start()
        service.indexer.start()
        metrics.watch(service)
        app.state.service = service
        # web3 and py-evm leave a large heap of long-lived objects: move it out of the collector's way,
        # so that garbage collection on the request path scans only what requests allocate.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await service.intake.stop()
            service.close()

    app = FastAPI(title="CareLedger", version="0.1.0", description=DESCRIPTION, lifespan=lifespan)
    app.state.metrics = metrics
    install_error_handlers(app)
    for module in (health, records, verify, admin, consent, access, audit, patient, patient_page):
        app.include_router(module.router)
    app.include_router(records.receipts_router)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestMetrics, metrics=metrics)
    return app


def app() -> FastAPI:
    """Factory for ``uvicorn --factory api.main:app`` (settings from ``CARELEDGER_*``)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    return create_app()
