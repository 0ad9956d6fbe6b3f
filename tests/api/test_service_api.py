"""Health, readiness, metrics, OpenAPI and app administration."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from api.service import Service
from ledger.store.apps import Role
from ledger.store.postal_addresses import postal_address, set_postal_address
from tests.api.conftest import PATIENT, MakeApp


@pytest.fixture
def admin(make_app: MakeApp) -> dict[str, str]:
    headers, _ = make_app({Role.ADMIN}, organisation="Operator")
    return headers


def test_health_and_readiness(client: TestClient, admin: dict[str, str], make_app: MakeApp) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz", headers=admin)
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ready" and body["chain"]["reachable"] and body["batcher"]["running"]
    registrar, _ = make_app({Role.REGISTRAR})
    for others in ({}, registrar, {"Authorization": "Bearer clk_nope"}):  # anyone else: ready or not, nothing more
        assert client.get("/readyz", headers=others).json() == {"status": "ready"}


def test_readiness_fails_when_the_batcher_stopped(client: TestClient, service: Service, admin: dict[str, str]) -> None:
    service.batcher.stop()
    ready = client.get("/readyz", headers=admin)
    assert ready.status_code == 503 and ready.json()["batcher"]["running"] is False
    assert ready.headers["Retry-After"]
    public = client.get("/readyz")
    assert (public.status_code, public.json()) == (503, {"status": "not_ready"})


def test_readiness_fails_when_the_indexer_stopped(client: TestClient, service: Service, admin: dict[str, str]) -> None:
    assert client.get("/readyz", headers=admin).json()["indexer"]["running"] is True
    service.indexer.stop()
    ready = client.get("/readyz", headers=admin)
    assert ready.status_code == 503 and ready.json()["indexer"]["running"] is False


def test_metrics_report_requests_and_anchoring(client: TestClient, make_app: MakeApp) -> None:
    headers, _ = make_app({Role.REGISTRAR, Role.READER})
    record_id = client.post(
        "/v1/records", json={"patient": PATIENT, "digest": "0x" + "ab" * 32}, headers=headers
    ).json()["recordId"]
    assert client.get(f"/v1/records/{record_id}/receipt", params={"wait": "true"}, headers=headers).status_code == 200
    text = client.get("/metrics").text
    assert 'careledger_http_requests_total{method="POST",route="/v1/records",status="202"} 1.0' in text
    assert "careledger_http_request_seconds_bucket" in text
    assert "careledger_records_anchored_total 1.0" in text
    assert "careledger_pending_records 0.0" in text
    assert "careledger_batch_size_records_count 1.0" in text
    gas = next(line for line in text.splitlines() if line.startswith("careledger_gas_used_total"))
    assert float(gas.split()[1]) > 21_000


def test_openapi_documents_every_operation_with_examples(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert client.get("/docs").status_code == 200
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            assert operation.get("summary"), (method, path)
            body = operation.get("requestBody")
            for content in (body or {}).get("content", {}).values():  # JSON, or the token request's form
                schema = content["schema"]
                ref = schema.get("$ref", "").rsplit("/", 1)[-1]
                component = spec["components"]["schemas"].get(ref, schema)
                assert component.get("examples") or any(
                    p.get("examples") for p in component.get("properties", {}).values()
                ), (method, path)


def test_admin_creates_organisations_and_apps_and_revokes_keys(
    client: TestClient, make_app: MakeApp, service: Service
) -> None:
    admin, _ = make_app({Role.ADMIN}, organisation="Operator")
    org = client.post("/v1/admin/organisations", json={"name": "Lakeside Clinic"}, headers=admin)
    assert org.status_code == 201 and org.json()["address"].startswith("0x")
    assert service.ledger.anchors.has_anchorer_role(org.json()["address"])
    created = client.post(
        "/v1/admin/apps",
        json={"organisationId": org.json()["id"], "name": "lab", "roles": ["registrar"]},
        headers=admin,
    )
    assert created.status_code == 201
    key = created.json()["apiKey"]
    listed = client.get("/v1/admin/apps", headers=admin).json()
    assert all("apiKey" not in app for app in listed) and key not in str(listed)
    assert service.db.conn.execute("SELECT COUNT(*) FROM apps WHERE key_hash = ?", (key.encode(),)).fetchone()[0] == 0
    lab = {"Authorization": f"Bearer {key}"}
    assert (
        client.post("/v1/records", json={"patient": PATIENT, "digest": "0x" + "cd" * 32}, headers=lab).status_code
        == 202
    )
    assert client.delete(f"/v1/admin/apps/{created.json()['id']}", headers=admin).json()["revokedAt"]
    assert (
        client.post("/v1/records", json={"patient": PATIENT, "digest": "0x" + "cd" * 32}, headers=lab).status_code
        == 401
    )


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("Lakeside\u200b Clinic", "invalid_name"),  # zero-width space
        ("\u202eLakeside Clinic", "invalid_name"),  # right-to-left override
        ("Lakeside Cl\u0456nic", "confusable_name"),  # Cyrillic i
        ("LAKESIDE CLINIC", "confusable_name"),
        ("Lakes1de Clinic", "confusable_name"),
    ],
)
def test_organisation_names_that_hide_or_imitate_are_refused(
    client: TestClient, admin: dict[str, str], service: Service, name: str, code: str
) -> None:
    original = client.post("/v1/admin/organisations", json={"name": "Lakeside Clinic"}, headers=admin)
    assert original.status_code == 201
    refused = client.post("/v1/admin/organisations", json={"name": name}, headers=admin)
    assert (refused.status_code, refused.json()["code"]) == (400 if code == "invalid_name" else 409, code), refused.text
    same = client.post("/v1/admin/organisations", json={"name": "\uff2cakeside  Clinic"}, headers=admin)
    assert same.status_code == 201 and same.json()["id"] == original.json()["id"]  # NFKC: the same name
    names = [o["name"] for o in client.get("/v1/admin/organisations", headers=admin).json()]
    assert names.count("Lakeside Clinic") == 1 and len(names) == 2  # the operator's and Lakeside


def test_admin_endpoints_need_the_admin_role_and_good_input(client: TestClient, make_app: MakeApp) -> None:
    admin, org = make_app({Role.ADMIN}, organisation="Operator")
    registrar, _ = make_app({Role.REGISTRAR})
    assert client.get("/v1/admin/apps", headers=registrar).status_code == 403
    bad_role = client.post(
        "/v1/admin/apps", json={"organisationId": org.id, "name": "x", "roles": ["root"]}, headers=admin
    )
    assert bad_role.status_code == 422
    no_emergency = client.post(
        "/v1/admin/apps", json={"organisationId": org.id, "name": "x", "roles": ["emergency"]}, headers=admin
    )
    assert no_emergency.status_code == 409 and no_emergency.json()["code"] == "conflict"
    unknown_org = client.post(
        "/v1/admin/apps", json={"organisationId": 999, "name": "x", "roles": ["reader"]}, headers=admin
    )
    assert unknown_org.status_code == 404 and unknown_org.json()["code"] == "not_found"
    assert client.delete("/v1/admin/apps/999", headers=admin).status_code == 404


def test_unknown_route_and_method_use_the_error_shape(client: TestClient) -> None:
    missing = client.get("/v1/nothing")
    assert missing.status_code == 404 and set(missing.json()) == {"code", "message", "details"}
    assert client.put("/healthz").json()["code"] == "method_not_allowed"


def test_readiness_fails_while_the_data_directory_lacks_room(
    client: TestClient, service: Service, admin: dict[str, str]
) -> None:
    ready = client.get("/readyz", headers=admin).json()
    assert ready["disk"]["enough"] is True and ready["disk"]["freeBytes"] >= ready["disk"]["minFreeBytes"] > 0
    service.settings.min_free_disk_bytes = ready["disk"]["freeBytes"] * 4  # more than the filesystem has
    short = client.get("/readyz", headers=admin)
    assert short.status_code == 503 and short.headers["Retry-After"]
    assert short.json()["disk"]["enough"] is False and short.json()["chain"]["reachable"] is True
    assert (client.get("/readyz").status_code, client.get("/readyz").json()) == (503, {"status": "not_ready"})


ADDRESS = {"lines": ["1 Quay Road"], "city": "Bristol", "state": None, "postalCode": "BS1 4QA", "country": "GB"}


def test_an_admin_registers_replaces_and_removes_an_organisations_postal_address(
    client: TestClient, admin: dict[str, str], make_app: MakeApp
) -> None:
    created = client.post(
        "/v1/admin/organisations", json={"name": "Quay Clinic", "postalAddress": ADDRESS}, headers=admin
    )
    assert created.status_code == 201 and created.json()["postalAddress"] == ADDRESS, created.text
    org_id = created.json()["id"]
    moved = {**ADDRESS, "lines": ["2 Harbour Walk", "Floor 3"], "postalCode": "BS1 5TT"}
    replaced = client.put(f"/v1/admin/organisations/{org_id}/postal-address", json=moved, headers=admin)
    assert replaced.status_code == 200 and replaced.json()["postalAddress"] == moved
    listed = {o["name"]: o for o in client.get("/v1/admin/organisations", headers=admin).json()}
    assert listed["Quay Clinic"]["postalAddress"] == moved and listed["Operator"]["postalAddress"] is None
    removed = client.delete(f"/v1/admin/organisations/{org_id}/postal-address", headers=admin)
    assert removed.status_code == 200 and removed.json()["postalAddress"] is None
    again = client.post(
        "/v1/admin/organisations", json={"name": "Quay Clinic", "postalAddress": ADDRESS}, headers=admin
    )
    assert again.json()["id"] == org_id and again.json()["postalAddress"] is None  # the existing one, as it is
    reader, _ = make_app({Role.READER})
    assert (
        client.put(f"/v1/admin/organisations/{org_id}/postal-address", json=ADDRESS, headers=reader).status_code == 403
    )


@pytest.mark.parametrize(
    ("address", "status", "code", "field"),
    [
        ({"lines": ["1 Quay\u202eRoad"]}, 400, "invalid_text", "postalAddress.lines[0]"),  # a bidi override
        ({"lines": ["1 Quay Road"], "city": "Bri\u200bstol"}, 400, "invalid_text", "postalAddress.city"),  # zero-width
        ({"lines": []}, 422, "invalid_request", None),  # no street line
        ({"lines": ["\u200b"]}, 400, "invalid_text", "postalAddress.lines[0]"),
        ({"lines": ["a", "b", "c", "d", "e"]}, 422, "invalid_request", None),
        ({"lines": ["x" * 101]}, 422, "invalid_request", None),
        ({"lines": ["line\nbreak"]}, 422, "invalid_request", None),
    ],
)
def test_postal_addresses_that_hide_text_or_overflow_are_refused(
    client: TestClient, admin: dict[str, str], address: dict[str, object], status: int, code: str, field: str | None
) -> None:
    org_id = client.post("/v1/admin/organisations", json={"name": "Quay Clinic"}, headers=admin).json()["id"]
    refused = client.put(f"/v1/admin/organisations/{org_id}/postal-address", json=address, headers=admin)
    assert (refused.status_code, refused.json()["code"]) == (status, code), refused.text
    if field is not None:
        assert refused.json()["details"]["field"] == field
    assert client.put("/v1/admin/organisations/999/postal-address", json=ADDRESS, headers=admin).status_code == 404
    listed = {o["name"]: o for o in client.get("/v1/admin/organisations", headers=admin).json()}
    assert listed["Quay Clinic"]["postalAddress"] is None  # nothing half-written


def test_an_organisation_changed_on_another_replica_shows_within_the_cache_time(
    service: Service, make_app: MakeApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("api.service.ORGANISATION_CACHE_SECONDS", 0.2)
    _, org = make_app({Role.READER})
    assert service.organisation(org.id).postal_address is None  # now cached
    set_postal_address(service.db.conn, org.id, postal_address(["3 Dock Lane"], city="Leeds"))  # as a replica would
    assert service.organisation(org.id).postal_address is None  # still the cached one
    time.sleep(0.3)
    address = service.organisation(org.id).postal_address
    assert address is not None and address.lines == ("3 Dock Lane",) and address.city == "Leeds"
