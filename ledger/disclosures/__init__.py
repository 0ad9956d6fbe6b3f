"""A patient's accounting of disclosures (HIPAA 45 CFR 164.528), read from the anchored access trail.

* :mod:`~ledger.disclosures.period`: the period asked for (dates, at most six years).
* :mod:`~ledger.disclosures.accounting`: the accounting itself: every disclosure, break-glass access
  and denied attempt of the period, each with its anchored audit document and receipt.
* :mod:`~ledger.disclosures.printable`: the accounting as one printable, self-contained HTML page.

The same accounting as a FHIR ``Bundle`` of ``AuditEvent``s is :mod:`ledger.fhir.audit_events`'s
(shared with the FHIR facade).
"""
