"""Property-based fuzzing of every documented operation: whatever a caller sends, never a 5xx.

Schemathesis generates requests from the service's own OpenAPI document (valid and invalid bodies,
parameters and headers) and sends them to a real `careledger serve` process, with a key holding every
role but admin (admin operations with an admin key). A 5xx fails the test; so does an error line in
the service's log once the traffic is done (the same test sends it: a log checked before, or
without, the fuzzing would prove nothing), and so does a log without the warnings that traffic's
4xx answers are logged with (the check would be blind).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from hypothesis.strategies import SearchStrategy
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.generation.case import Case

from tests.support.chain_under_test import ChainUnderTest
from tests.support.postgres import store_env
from tests.support.processes import create_admin, free_port, running_service, service_env, setup_app

pytestmark = pytest.mark.slow

ERROR_LINE = re.compile(r"\S+ \S+ (?:ERROR|CRITICAL) |(?:ERROR|CRITICAL):|Traceback |Exception in thread ")
"""An error in the service's output: its own log format (``time level name message``), uvicorn's
(``ERROR:    ...``), or a traceback printed outside logging (a thread that died)."""
CLIENT_ERROR_WARNING = " WARNING careledger.api "
"""How the service logs a 4xx answer (``api/errors.py``)."""


@pytest.fixture
def served(
    tmp_path: Path, chain_under_test: ChainUnderTest, request: pytest.FixtureRequest
) -> Iterator[tuple[str, dict[str, str], dict[str, str], Path]]:
    data = tmp_path / "data"
    log = tmp_path / "service.log"
    env = service_env(data, CARELEDGER_MAX_BATCH_AGE="0.2", **chain_under_test.env(), **store_env(request))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with chain_under_test.isolated():
        admin_key = create_admin(env)
        with running_service(env, port, log=log):
            key = setup_app(base, admin_key, ["registrar", "reader"])
            yield base, {"Authorization": f"Bearer {key}"}, {"Authorization": f"Bearer {admin_key}"}, log


def test_no_input_makes_the_service_fail_or_log_an_error(
    served: tuple[str, dict[str, str], dict[str, str], Path],
) -> None:
    base, app_headers, admin_headers, log = served
    api_schema = schemathesis.openapi.from_dict(httpx.get(f"{base}/openapi.json").json())
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) > 30
    for operation in operations:
        headers = admin_headers if operation.path.startswith("/v1/admin") else app_headers
        fuzz(operation.as_strategy(GenerationMode.POSITIVE), base, headers)
        # inputs that break the schema on purpose (operations without inputs have none to break)
        with contextlib.suppress(Unsatisfiable):
            fuzz(operation.as_strategy(GenerationMode.NEGATIVE), base, headers)

    logged = log.read_text("utf-8", errors="replace")
    assert CLIENT_ERROR_WARNING in logged, "the log holds none of the fuzzing's 4xx warnings: it is not the service's"
    errors = [line for line in logged.splitlines() if ERROR_LINE.match(line)]
    assert not errors, (errors[:20], logged[-5000:])


def fuzz(strategy: SearchStrategy[Case], base: str, headers: dict[str, str]) -> None:
    @given(case=strategy)
    @settings(
        max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), database=None, derandomize=True
    )  # the same cases every run: CI stays reproducible; widen by hand
    def call(case: Case) -> None:
        case.call_and_validate(base_url=base, headers=headers, checks=[not_a_server_error])

    call()
