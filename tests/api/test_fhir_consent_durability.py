"""A FHIR Consent is created once and never lost (issue 15): kept pending before its grant is relayed,
so that a process dying after the grant was mined (or before it was sent) leaves a Consent the retry
of the same signed Consent completes, from the real chain; a retry answers the same Consent without
a second transaction; identical creates at once relay once; a pending Consent whose signature
expired with no grant is dropped when next touched.

The failures are injected into the real relay on the real chain, at the point a kill would strike:
after the grant transaction is mined (before the facade completes its row), or just before sending.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient

from api.service import Service
from ledger.consent.registry import ConsentRegistryClient
from ledger.consent.relay import Admit, Relayed, Relayer, Signed
from ledger.consent.terms import ConsentSet
from ledger.fhir.consent import terms_digest
from ledger.fhir.consent_resources import create_consent
from ledger.store.apps import Role
from ledger.store.fhir_consents import PendingConsent, find_consents, find_pending
from tests.api.conftest import MakeApp
from tests.api.test_fhir_facade import FHIR, outcome, valid
from tests.support.chain_under_test import travel_to
from tests.support.fhir_consents import pcf_consent, signed_consent


class ProcessDied(BaseException):
    """Where a ``kill -9`` would strike: nothing after this point of the request runs."""


class DiesAfterMining(Relayer):
    """The real relayer, whose process dies once the grant is mined, before the facade completes it."""

    def grant_set(self, consent: ConsentSet, signed: Signed, admit: Admit | None = None) -> Relayed:
        super().grant_set(consent, signed, admit)
        raise ProcessDied


def dies_before_sending(service: Service) -> Relayer:
    """The real relayer, whose process dies after the local checks (and the pending row), before sending."""
    registry = ConsentRegistryClient(
        service.ledger.chain, service.ledger.consents.address, service.ledger.consents.deploy_block
    )

    def die(*args: Any, **kwargs: Any) -> Any:
        raise ProcessDied

    registry.grant_set_by_signature = die  # type: ignore[method-assign]
    return Relayer(registry, service.ledger.chain, service.ledger.relayer)


@pytest.fixture
def hospital(make_app: MakeApp) -> tuple[dict[str, str], str]:
    headers, org = make_app({Role.READER, Role.RELAYER}, "General Hospital")
    return {**headers, "Content-Type": FHIR}, org.address


def signed_body(service: Service, patient: LocalAccount, org: str, **kw: Any) -> dict[str, Any]:
    nonce = service.ledger.consents.nonce(patient.address)
    return signed_consent(service.ledger.consents.domain, nonce, patient, pcf_consent(patient.address, org), **kw)


def set_grants(service: Service, patient: LocalAccount) -> list[str]:
    """The terms of every ConsentSetGranted on chain for the patient (read from the chain itself)."""
    return [
        e.fields["terms"] for e in service.ledger.consents.history(patient.address) if e.kind == "ConsentSetGranted"
    ]


def rows(service: Service, patient: LocalAccount) -> tuple[list[str], list[str]]:
    """The ids of the patient's granted and pending rows in the store."""
    conn = service.db.conn
    granted = [c.id for c in find_consents(conn, patient=patient.address)]
    return granted, [c.id for c in find_pending(conn, patient=patient.address)]


def only_pending(service: Service, patient: LocalAccount) -> PendingConsent:
    (pending,) = find_pending(service.db.conn, patient=patient.address)
    assert find_consents(service.db.conn, patient=patient.address) == []
    return pending


def test_a_crash_after_the_grant_is_mined_is_completed_by_the_retry(
    client: TestClient, service: Service, patient: LocalAccount, hospital: tuple[dict[str, str], str]
) -> None:
    headers, org = hospital
    body = signed_body(service, patient, org)
    dying = DiesAfterMining(service.ledger.consents, service.ledger.chain, service.ledger.relayer)
    with pytest.raises(ProcessDied):
        create_consent(dying, service.db, body, None)
    assert set_grants(service, patient) == [terms_digest(body)]  # granted on chain ...
    pending = only_pending(service, patient)  # ... and the facade kept it, pending
    assert service.ledger.consents.nonce(patient.address) == 1  # the signature's nonce is used
    search = valid(client.get("/fhir/r4/Consent", params={"status": "active"}, headers=headers), "Bundle")
    assert [e["resource"]["id"] for e in search["entry"]] == [pending.id]  # the search settled it from the chain
    blocks = service.ledger.chain.block_number()

    retried = client.post("/fhir/r4/Consent", json=body, headers=headers)
    assert retried.status_code == 200, retried.text  # completed by the search: granted already
    served = valid(retried, "Consent")
    assert served["id"] == pending.id and served["status"] == "active"
    assert service.ledger.chain.block_number() == blocks  # nothing sent again
    assert rows(service, patient) == ([pending.id], [])
    assert set_grants(service, patient) == [terms_digest(body)]


def test_the_retry_itself_completes_a_grant_mined_before_the_crash(
    client: TestClient, service: Service, patient: LocalAccount, hospital: tuple[dict[str, str], str]
) -> None:
    headers, org = hospital
    body = signed_body(service, patient, org)
    with pytest.raises(ProcessDied):
        create_consent(
            DiesAfterMining(service.ledger.consents, service.ledger.chain, service.ledger.relayer),
            service.db,
            body,
            None,
        )
    pending = only_pending(service, patient)

    retried = client.post("/fhir/r4/Consent", json=body, headers=headers)
    assert retried.status_code == 201, retried.text  # this request completed it: created, for the client
    served = valid(retried, "Consent")
    assert served["id"] == pending.id and served["status"] == "active"
    assert retried.headers["location"].endswith(f"/fhir/r4/Consent/{pending.id}/_history/1")
    assert valid(client.get(f"/fhir/r4/Consent/{pending.id}", headers=headers), "Consent") == served
    assert rows(service, patient) == ([pending.id], [])
    assert set_grants(service, patient) == [terms_digest(body)]
    assert service.ledger.consents.is_permitted(patient.address, org, "Observation", "TREAT")


def test_a_crash_before_sending_is_relayed_by_the_retry(
    client: TestClient, service: Service, patient: LocalAccount, hospital: tuple[dict[str, str], str]
) -> None:
    headers, org = hospital
    body = signed_body(service, patient, org)
    with pytest.raises(ProcessDied):
        create_consent(dies_before_sending(service), service.db, body, None)
    pending = only_pending(service, patient)
    assert set_grants(service, patient) == []
    assert valid(client.get("/fhir/r4/Consent", headers=headers), "Bundle")["total"] == 0  # not served while pending
    outcome(client.get(f"/fhir/r4/Consent/{pending.id}", headers=headers), 404, "not-found")

    retried = client.post("/fhir/r4/Consent", json=body, headers=headers)
    assert retried.status_code == 201, retried.text
    assert valid(retried, "Consent")["id"] == pending.id
    assert rows(service, patient) == ([pending.id], [])
    assert set_grants(service, patient) == [terms_digest(body)]


def test_a_pending_consent_whose_signature_expired_ungranted_is_dropped_when_touched(
    client: TestClient, service: Service, patient: LocalAccount, hospital: tuple[dict[str, str], str]
) -> None:
    headers, org = hospital
    deadline = service.ledger.chain.block_timestamp("latest") + 300
    body = signed_body(service, patient, org, deadline=deadline)
    with pytest.raises(ProcessDied):
        create_consent(dies_before_sending(service), service.db, body, None)
    pending = only_pending(service, patient)
    outcome(client.get(f"/fhir/r4/Consent/{pending.id}", headers=headers), 404, "not-found")
    assert rows(service, patient) == ([], [pending.id])  # its deadline holds: still pending

    travel_to(service.ledger.chain, deadline + 1)
    outcome(client.get(f"/fhir/r4/Consent/{pending.id}", headers=headers), 404, "not-found")
    assert rows(service, patient) == ([], [])  # no grant can come now: dropped
    outcome(client.post("/fhir/r4/Consent", json=body, headers=headers), 400, "security", "signature_expired")
    assert rows(service, patient) == ([], [])
    assert set_grants(service, patient) == []


def test_the_same_signed_consent_twice_is_one_consent_and_one_transaction(
    client: TestClient, service: Service, patient: LocalAccount, hospital: tuple[dict[str, str], str]
) -> None:
    headers, org = hospital
    body = signed_body(service, patient, org)
    first = client.post("/fhir/r4/Consent", json=body, headers=headers)
    assert first.status_code == 201, first.text
    blocks = service.ledger.chain.block_number()
    again = client.post("/fhir/r4/Consent", json={**body, "id": "ignored", "meta": {"versionId": "9"}}, headers=headers)
    assert again.status_code == 200, again.text
    assert valid(again, "Consent") == valid(first, "Consent")
    assert service.ledger.chain.block_number() == blocks
    assert rows(service, patient) == ([valid(first, "Consent")["id"]], [])
    assert set_grants(service, patient) == [terms_digest(body)]

    # The same terms signed again (a new nonce, a new signature) are a new Consent, as before.
    fresh = client.post("/fhir/r4/Consent", json=signed_body(service, patient, org), headers=headers)
    assert fresh.status_code == 201, fresh.text
    assert valid(fresh, "Consent")["id"] != valid(first, "Consent")["id"]
    assert set_grants(service, patient) == [terms_digest(body)] * 2


def test_a_refused_create_keeps_nothing(
    client: TestClient, service: Service, patient: LocalAccount, hospital: tuple[dict[str, str], str]
) -> None:
    headers, org = hospital
    body = signed_body(service, patient, org)
    stale = signed_consent(service.ledger.consents.domain, 7, patient, pcf_consent(patient.address, org))
    outcome(client.post("/fhir/r4/Consent", json=stale, headers=headers), 400, "security", "invalid_signature")
    assert rows(service, patient) == ([], [])
    assert client.post("/fhir/r4/Consent", json=body, headers=headers).status_code == 201


def slowed_sends(service: Service, monkeypatch: pytest.MonkeyPatch, seconds: float) -> Callable[[], int]:
    """Make each grant take ``seconds`` longer before it is sent (so that two requests overlap);
    returns how many were sent."""
    registry = service.relayer.consents
    real = registry.grant_set_by_signature
    sent = []

    def slow(*args: Any, **kwargs: Any) -> Any:
        time.sleep(seconds)
        sent.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(registry, "grant_set_by_signature", slow)
    return lambda: len(sent)


def test_identical_creates_at_once_make_one_consent(
    client: TestClient,
    service: Service,
    patient: LocalAccount,
    hospital: tuple[dict[str, str], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    headers, org = hospital
    body = signed_body(service, patient, org)
    sent = slowed_sends(service, monkeypatch, 0.5)
    start = threading.Barrier(2)
    answers: list[httpx.Response] = []

    def post() -> None:
        start.wait()
        answers.append(client.post("/fhir/r4/Consent", json=body, headers=headers))

    threads = [threading.Thread(target=post) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(a.status_code for a in answers) == [200, 201], [a.text for a in answers]
    (consent_id,) = {valid(a, "Consent")["id"] for a in answers}
    assert rows(service, patient) == ([consent_id], [])
    assert sent() == 1
    assert set_grants(service, patient) == [terms_digest(body)]
