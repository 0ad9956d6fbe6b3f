"""FHIR R4 views of the ledger (``fhir.resources.R4B`` models), for FHIR clients and FHIR-shaped exports.

* :mod:`~ledger.fhir.audit_events`: access decisions of the access trail as ``AuditEvent``s after IHE
  BALP, and a ``Bundle`` of them (the accounting of disclosures uses it; so can a FHIR facade).

(Validating record documents as FHIR is :mod:`ledger.records.fhir`'s.)
"""
