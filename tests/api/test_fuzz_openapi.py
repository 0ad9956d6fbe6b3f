"""Schemathesis with every check (``--checks all``), stateful phase included, against a real
``careledger serve``: the OpenAPI document tells the truth, so no check fails.

``schemathesis run`` (the CLI, as a subprocess) reads the service's own ``/openapi.json`` and runs
its four phases (examples, coverage, fuzzing, stateful through the links it infers) with every
built-in check: not_a_server_error, status_code_conformance, content_type_conformance,
response_headers_conformance, response_schema_conformance, negative_data_rejection,
positive_data_acceptance, missing_required_header, unsupported_method, allow_header_conformance,
use_after_free, ensure_resource_availability, ignored_auth and object_level_authorization. The CLI
is used rather than the Python API because only its engine runs the coverage phase (where
unsupported methods, 405s and their ``Allow`` are probed) and the object-level checks.

Two runs against one service, with keys for every role:

- by role: every operation with the identity it is for (admin key on the admin routes and on
  ``/readyz``, whose details are for admins; the emergency app on break-glass; a signed-in
  patient's session on the patient's own reads; an app with registrar, reader and relayer roles
  everywhere else). ``ignored_auth`` then removes and spoils each credential and expects 401/403.
- peers: the routes of organisation apps, as two organisations' apps (``peers`` in a Web Fuzzing
  Commons auth file), so ``object_level_authorization`` replays what one organisation created or
  read as the other and expects it refused.

A failure, an error, a skipped phase, an error line in the service's log, or a log without the
warnings 4xx answers are logged with (the log would not be the service's) fails the test. The seed
is fixed: CI sees the same cases every run; widen by hand (``--seed``, ``--max-examples``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account

from tests.support import paths
from tests.support.chain_under_test import ChainUnderTest
from tests.support.patient_sessions import sign_in_over_http
from tests.support.postgres import store_env
from tests.support.processes import create_admin, free_port, running_service, service_env, setup_app

pytestmark = pytest.mark.slow

SEED = 20261201
MAX_EXAMPLES = 25
"""Per operation and phase: both runs take well under a minute each on the embedded chain."""
HOOKS = "tests.support.schemathesis_hooks"
ERROR_LINE = re.compile(r"\S+ \S+ (?:ERROR|CRITICAL) |(?:ERROR|CRITICAL):|Traceback |Exception in thread ")
"""An error in the service's output: its own log format (``time level name message``), uvicorn's
(``ERROR:    ...``), or a traceback printed outside logging (a thread that died)."""
CLIENT_ERROR_WARNING = " WARNING careledger.api "
"""How the service logs a 4xx answer (``api/errors.py``)."""

ADMIN_ROUTES = r"^/(v1/admin/|readyz$)"
BREAK_GLASS = r"^/v1/access/emergency$"
PATIENT_READS = r"^/v1/patient/\{patient\}/(consents|accesses|disclosures(/html|/fhir)?)$"
NOT_GENERATED_VALID = "|".join(
    [
        r"^/v1/(consents|patient)/(grants|revocations|guardians)$",
        r"^/v1/patient/sessions$",
        r"^/fhir/r4/Consent(/\{consent_id\})?$",
        r"^/fhir/r4/AuditEvent$",
        r"^/v1/records(/bulk|/\{record_id\}/amend)?$",
        r"^/oauth/token$",
        r"^/v1/admin/apps/\{app_id\}/jwks$",
        r"^/v1/patient/\{patient\}/disclosures(/html|/fhir)?$",
    ]
)
ORGANISATION_TAGS = ("records", "verification", "consent", "access", "audit", "fhir")
POSITIVE_STATUSES_NOT_GENERATED_VALID = ["2xx", "3xx", "400", "401", "403", "404", "409", "429", "5xx"]
"""``positive_data_acceptance`` expects a schema-valid request to be accepted (or refused for auth,
absence, conflict or rate). Some requests cannot be generated valid, because what makes them valid
is no JSON Schema's to state:

- a body signed by a patient (grants, revocations, guardians, sign-in, a FHIR Consent created or
  withdrawn): its signature is over the
  body's own terms and the patient's current nonce, its deadline and a sign-in's ``issuedAt`` are
  about the clock, a sign-in's challenge is one the service issued, a grant's window must start
  before it ends (``invalid_signature``, ``signature_expired``, ``invalid_challenge``,
  ``wrong_origin``, ``invalid_input``);
- a registration (single, bulk or an amendment) whose base64 ``content`` says it is FHIR
  (``contentType`` ``application/fhir+json``, the field's example) must decode to a valid FHIR
  resource, and a single one with ``bundle: entries`` must carry a valid FHIR transaction or
  collection Bundle: no generator draws valid FHIR from a JSON Schema (``invalid_fhir``,
  ``invalid_json``);
- a token request: its client assertion is a JWT signed with a registered key (OAuth's
  ``invalid_request``, ``invalid_scope``);
- an app's SMART client keys: each must be a real RSA or P-384 public key, and the app must hold a
  role a scope stands for (``invalid_input``);
- a FHIR AuditEvent search: its ``date`` values are FHIR dates or instants that must exist (no
  30 February) and lie within the representable range (``invalid_input``);
- an accounting of disclosures: its period must not start after it ends, nor end after tomorrow,
  nor last more than six years: constraints between two parameters and the clock
  (``invalid_period``, ``period_too_long``).

So these operations may also answer 400 to valid-looking data; every other check still applies."""


@dataclass(frozen=True)
class Identities:
    """A served instance and a key for every role."""

    base: str
    admin: str
    organisation: str
    other_organisation: str
    emergency: str
    patient: str
    patient_session: str
    revocable_app: int


def _new_app(base: str, admin: str, organisation_id: int, name: str, roles: list[str]) -> dict[str, Any]:
    created = httpx.post(
        f"{base}/v1/admin/apps",
        json={"organisationId": organisation_id, "name": name, "roles": roles},
        headers={"Authorization": f"Bearer {admin}"},
        timeout=60,
    )
    assert created.status_code == 201, created.text
    app: dict[str, Any] = created.json()
    return app


def _identities(base: str, admin: str) -> Identities:
    organisation = setup_app(base, admin, ["registrar", "reader", "relayer"], "General Hospital")
    other = setup_app(base, admin, ["registrar", "reader", "relayer"], "Lakeside Clinic")
    headers = {"Authorization": f"Bearer {admin}"}
    emergency_org = httpx.post(
        f"{base}/v1/admin/organisations",
        json={"name": "Emergency Department", "emergency": True},
        headers=headers,
        timeout=60,
    ).json()
    emergency = _new_app(base, admin, emergency_org["id"], "er-console", ["emergency", "reader"])
    organisations = httpx.get(f"{base}/v1/admin/organisations", headers=headers, timeout=60).json()
    hospital = next(o["id"] for o in organisations if o["name"] == "General Hospital")
    revocable = _new_app(base, admin, hospital, "to-revoke", ["reader"])
    patient = Account.create()
    return Identities(
        base,
        admin,
        organisation,
        other,
        emergency["apiKey"],
        patient.address,
        sign_in_over_http(base, patient),
        revocable["id"],
    )


@pytest.fixture
def served(
    tmp_path: Path, chain_under_test: ChainUnderTest, request: pytest.FixtureRequest
) -> Iterator[tuple[Identities, Path]]:
    data = tmp_path / "data"
    log = tmp_path / "service.log"
    env = service_env(data, CARELEDGER_MAX_BATCH_AGE="0.2", **chain_under_test.env(), **store_env(request))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with chain_under_test.isolated():
        admin_key = create_admin(env)
        with running_service(env, port, log=log):
            yield _identities(base, admin_key), log


def _toml(value: object) -> str:
    return json.dumps(value)  # a JSON string or list is a TOML one


def by_role_config(ids: Identities) -> str:
    """Every operation, each with the identity it is for."""
    bearer = {
        ADMIN_ROUTES: ids.admin,
        BREAK_GLASS: ids.emergency,
        PATIENT_READS: ids.patient_session,
    }
    sections = [
        f"[[operations]]\ninclude-path-regex = {_toml(path)}\n"
        f"headers = {{ Authorization = {_toml('Bearer ' + key)} }}\n"
        for path, key in bearer.items()
    ]
    return "\n".join(
        [
            f"hooks = {_toml(HOOKS)}\nseed = {SEED}\n",
            *sections,
            # every other operation: an organisation's app with every role but admin and emergency
            f"[[operations]]\nexclude-path-regex = {_toml('|'.join(bearer))}\n"
            f"headers = {{ Authorization = {_toml('Bearer ' + ids.organisation)} }}\n",
            # the patient's reads name the signed-in patient (another one is a 403, tested elsewhere)
            f"[[operations]]\ninclude-path-regex = {_toml(PATIENT_READS)}\n"
            f"parameters = {{ patient = {_toml(ids.patient)} }}\n",
            # revocations take an app made for it: a generated id would revoke the run's own keys
            f'[[operations]]\ninclude-path = "/v1/admin/apps/{{app_id}}"\n'
            f"parameters = {{ app_id = {ids.revocable_app} }}\n",
            _not_generated_valid_section(),
        ]
    )


def peers_config(ids: Identities, auth_file: Path) -> str:
    """The organisations' routes as one organisation's app, the other's kept for peer probes."""
    auth_file.write_text(
        json.dumps(
            {
                "auth": [
                    {"name": name, "fixedHeaders": [{"name": "Authorization", "value": f"Bearer {key}"}]}
                    for name, key in (("hospital", ids.organisation), ("clinic", ids.other_organisation))
                ]
            }
        )
    )
    return "\n".join(
        [
            f"hooks = {_toml(HOOKS)}\nseed = {SEED}\n",
            f'[auth.wfc]\npath = {_toml(str(auth_file))}\nuser = "hospital"\npeers = ["hospital", "clinic"]\n',
            _not_generated_valid_section(),
        ]
    )


def _not_generated_valid_section() -> str:
    return (
        f"[[operations]]\ninclude-path-regex = {_toml(NOT_GENERATED_VALID)}\n"
        f"checks.positive_data_acceptance.expected-statuses = {_toml(POSITIVE_STATUSES_NOT_GENERATED_VALID)}\n"
    )


def schemathesis_run(base: str, config: str, workdir: Path, *options: str) -> dict[str, Any]:
    """``schemathesis run --checks all`` with ``config``; its JSON report (the output on failure)."""
    config_file = workdir / "schemathesis.toml"
    config_file.write_text(config)
    report = workdir / "report.json"
    done = subprocess.run(
        [
            sys.executable,
            *("-m", "schemathesis.cli", "--no-color", "--config-file", str(config_file)),
            *("run", f"{base}/openapi.json", "--checks", "all", "--max-examples", str(MAX_EXAMPLES)),
            *("--workers", "1", "--report", "json", "--report-json-path", str(report), *options),
        ],
        cwd=paths.REPO,
        env={**os.environ, "PYTHONPATH": str(paths.REPO)},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert report.exists(), done.stdout[-5000:] + done.stderr[-5000:]
    result: dict[str, Any] = json.loads(report.read_text())
    failed = result["failures"] or result["errors"] or done.returncode != 0
    assert not failed, done.stdout[-20000:]
    assert result["complete"] and result["stop_reason"] == "completed", done.stdout[-5000:]
    assert all(phase["status"] == "success" for phase in result["phases"].values()), result["phases"]
    return result


def test_every_check_holds_against_the_served_document(served: tuple[Identities, Path], tmp_path: Path) -> None:
    ids, log = served
    (by_role := tmp_path / "by-role").mkdir()
    everything = schemathesis_run(ids.base, by_role_config(ids), by_role)
    assert everything["test_cases"]["generated"] > 1_000
    (peers := tmp_path / "peers").mkdir()
    tags = [option for tag in ORGANISATION_TAGS for option in ("--include-tag", tag)]
    schemathesis_run(ids.base, peers_config(ids, peers / "auth.json"), peers, *tags)

    logged = log.read_text("utf-8", errors="replace")
    assert CLIENT_ERROR_WARNING in logged, "the log holds none of the run's 4xx warnings: it is not the service's"
    errors = [line for line in logged.splitlines() if ERROR_LINE.match(line)]
    assert not errors, (errors[:20], logged[-5000:])
