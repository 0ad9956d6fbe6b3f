"""Per-client limits count the peer's address unless it is a trusted proxy (a real ``careledger serve``).

uvicorn trusts ``X-Forwarded-For`` from 127.0.0.1 by default, so a client on the same host could
rotate the header and never run out of relays. The service trusts the header only from the
addresses in ``CARELEDGER_TRUSTED_PROXIES`` (none by default).
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from api.relay_budgets import RELAYS_PER_IP
from tests.support.chain_under_test import ChainUnderTest
from tests.support.processes import create_admin, free_port, running_service, service_env

pytestmark = pytest.mark.slow


def _statuses(base: str, count: int) -> list[int]:
    """POST junk relays from 'different clients' (a new X-Forwarded-For each): what they are answered."""
    with httpx.Client(base_url=base, timeout=30) as client:
        return [
            client.post(
                "/v1/patient/grants", json={}, headers={"X-Forwarded-For": f"203.0.113.{i % 250 + 1}"}
            ).status_code
            for i in range(count)
        ]


@pytest.mark.parametrize("trusted", ["", "127.0.0.1"], ids=["no proxy trusted", "loopback proxy trusted"])
def test_forwarded_addresses_count_only_from_trusted_proxies(
    tmp_path: Path, chain_under_test: ChainUnderTest, trusted: str
) -> None:
    env = service_env(tmp_path / "data", CARELEDGER_TRUSTED_PROXIES=trusted, **chain_under_test.env())
    create_admin(env)
    port = free_port()
    with running_service(env, port):
        statuses = _statuses(f"http://127.0.0.1:{port}", RELAYS_PER_IP + 5)
    if trusted:  # every request comes from another client as the proxy tells it: none is limited
        assert 429 not in statuses and set(statuses) == {422}
    else:  # the header is ignored: all are one client, limited after its budget
        assert statuses[:RELAYS_PER_IP] == [422] * RELAYS_PER_IP and statuses[RELAYS_PER_IP:] == [429] * 5
