"""FHIR R4 views of the ledger (``fhir.resources.R4B`` models): the facade's library (``/fhir/r4``)
and FHIR-shaped exports; what FHIR resources mean to the ledger and back.

* :mod:`~ledger.fhir.systems`: the code systems, profiles and CareLedger's own URIs.
* :mod:`~ledger.fhir.consent`: an IHE PCF-shaped ``Consent`` read as a consent document
  (:class:`~ledger.consent.terms.ConsentSet`), its signed terms digest, and the refusal of shapes the
  ledger cannot hold as they say.
* :mod:`~ledger.fhir.consent_resources`: Consent resources created (kept pending first, so a retry
  answers the same one), withdrawn, read and searched page by page; their status from the chain.
* :mod:`~ledger.fhir.pending_consents`: a pending Consent settled from the chain (completed with its
  mined grant, or dropped once its signature expired ungranted).
* :mod:`~ledger.fhir.search_parameters`: what every search reads alike (``_count``, references).
* :mod:`~ledger.fhir.consent_links`: which Consent granted the consent that decided an access, as of
  the decision's block (from the chain index; none while it lags).
* :mod:`~ledger.fhir.provenance`: the ``Provenance`` of an anchored record, carrying its receipt.
* :mod:`~ledger.fhir.capability`: the ``CapabilityStatement`` (exactly what the facade supports).
* :mod:`~ledger.fhir.outcome`: errors as ``OperationOutcome``; searchset ``Bundle``.
* :mod:`~ledger.fhir.audit_events`: access decisions of the access trail as ``AuditEvent``s after IHE
  BALP, and a ``Bundle`` of them (the accounting of disclosures uses it).

(Validating record documents as FHIR is :mod:`ledger.records.fhir`'s.)
"""
