"""One router per feature; a route parses, calls :mod:`ledger`, and shapes the answer.

Route modules never import each other: what two of them share lives in :mod:`api.schemas`
(bodies and their JSON), :mod:`api.deps` (who is calling) or the library.
"""

from . import (
    access,
    admin,
    audit,
    consent,
    disclosures,
    docs,
    fhir,
    health,
    patient,
    patient_page,
    records,
    smart,
    verify,
)

ROUTERS = (
    health.router,
    smart.router,
    records.router,
    verify.router,
    admin.router,
    consent.router,
    access.router,
    audit.router,
    patient.router,
    disclosures.router,
    patient_page.router,
    docs.router,
    records.receipts_router,
    fhir.router,
)
