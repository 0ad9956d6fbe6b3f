"""CareLedger's REST API for clinical apps (FastAPI)."""
