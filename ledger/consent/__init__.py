"""Patient consent: codes, terms, EIP-712 typed data, the ConsentRegistry client, patient sign-in.

* :mod:`~ledger.consent.codes`: scope, purpose-of-use and reason codes as bytes32.
* :mod:`~ledger.consent.terms`: a consent's key and terms, the contract's status and what it means now.
* :mod:`~ledger.consent.typed_data`: EIP-712 domain and types, signing and signer recovery.
* :mod:`~ledger.consent.registry`: the ConsentRegistry client.
* :mod:`~ledger.consent.patient_session`: the ``PatientSession`` signature a patient signs in with.
"""
