"""End to end in headless Chromium: a patient makes a key in the page, grants consent to an
organisation, whose app's access is then allowed; revokes it, and the same access is denied; both
attempts (and a break-glass access) show in the page's access list. Screenshots go to test-artifacts/;
``CARELEDGER_UPDATE_DOCS_SCREENSHOT=1`` also refreshes docs/patient-page.png for the README."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from playwright.sync_api import Browser, Page, expect

from ledger.consent.typed_data import sign_typed_data
from tests.browser.conftest import RunningService
from tests.support.processes import ROOT

pytestmark = pytest.mark.slow

PASSPHRASE = "correct horse battery"
SCOPE, PURPOSE = "Observation", "TREAT"
DOCS_SCREENSHOT = ROOT / "docs" / "patient-page.png"
TIMEOUT_MS = 20_000


def admin_post(served: RunningService, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(
        f"{served.base}/v1/admin/{path}", json=body, timeout=60, headers={"Authorization": f"Bearer {served.admin_key}"}
    )
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


def make_app(served: RunningService, organisation: str, roles: list[str], emergency: bool = False) -> str:
    org = admin_post(served, "organisations", {"name": organisation, "emergency": emergency})
    key: str = admin_post(served, "apps", {"organisationId": org["id"], "name": "app", "roles": roles})["apiKey"]
    return key


def access(served: RunningService, key: str, patient: str, path: str = "", **body: str) -> httpx.Response:
    return httpx.post(
        f"{served.base}/v1/access{path}",
        headers={"Authorization": f"Bearer {key}"},
        timeout=60,
        json={"patient": patient, **body},
    )


def status_says(page: Page, pattern: str) -> None:
    expect(page.locator("#status")).to_have_text(re.compile(pattern), timeout=TIMEOUT_MS)


def test_a_patient_grants_watches_and_revokes_access_in_the_page(
    served: RunningService,
    browser: Browser,
    artifacts: Path,
    tmp_path: Path,
) -> None:
    reader_key = make_app(served, "General Hospital", ["reader"])
    emergency_key = make_app(served, "City Ambulance", ["reader", "emergency"], emergency=True)
    context = browser.new_context(viewport={"width": 1000, "height": 1400}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(f"{served.base}/patient")
    expect(page.locator("body[data-ready=true]")).to_be_attached()
    page.screenshot(path=artifacts / "patient-1-start.png", full_page=True)

    # A key, made and encrypted in the page; submitted from the keyboard.
    page.get_by_label("Passphrase (at least 8 characters)").fill(PASSPHRASE)
    page.get_by_label("Passphrase again").fill(PASSPHRASE)
    page.get_by_label("Passphrase again").press("Enter")
    expect(page.locator("#dashboard")).to_be_visible()
    patient = page.locator("#address").inner_text()
    assert re.fullmatch(r"0x[0-9a-fA-F]{40}", patient)
    with page.expect_download() as download:
        page.get_by_role("button", name="Download key backup").click()
    assert patient[2:].lower() in download.value.suggested_filename.lower()
    backup = tmp_path / "backup.json"
    download.value.save_as(backup)

    # Removed from the device and imported back from the backup (still encrypted).
    page.get_by_role("button", name="Lock").click()
    page.get_by_role("button", name=re.compile("Remove this key")).click()
    page.get_by_label("Key backup file (.json)").set_input_files(backup)
    page.get_by_role("button", name="Import backup").click()
    expect(page.locator("#locked-address")).to_have_text(patient)

    # A wrong passphrase is a clear message; the right one unlocks.
    page.get_by_label("Passphrase", exact=True).fill("not the passphrase")
    page.get_by_role("button", name="Unlock").click()
    expect(page.locator("#error")).to_have_text(re.compile("passphrase does not unlock"))
    page.get_by_label("Passphrase", exact=True).fill(PASSPHRASE)
    page.get_by_role("button", name="Unlock").click()
    expect(page.locator("#dashboard")).to_be_visible()

    # Grant: signed in the page, relayed, confirmed in a block.
    page.get_by_label("Organisation").select_option(label="General Hospital")
    page.get_by_label("Which data").select_option(SCOPE)
    page.get_by_label("For what purpose").select_option(PURPOSE)
    page.get_by_role("button", name="Sign and give consent").click()
    status_says(page, r"Consent given to General Hospital\. Transaction 0x[0-9a-f]{64} confirmed in block \d+")
    expect(page.locator("#consents-current .consent.active")).to_contain_text("General Hospital")

    allowed = access(served, reader_key, patient, scope=SCOPE, purpose=PURPOSE)
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["decision"] == "allowed"
    emergency = access(served, emergency_key, patient, "/emergency", scope="*", reason="UNCONSCIOUS")
    assert emergency.status_code == 200, emergency.text

    # Revoke: the same access is now denied.
    page.get_by_role("button", name=re.compile("^Withdraw consent: General Hospital")).click()
    status_says(page, r"Consent of General Hospital withdrawn\. Transaction 0x[0-9a-f]{64} confirmed in block \d+")
    expect(page.locator("#consents-ended .consent.revoked")).to_have_count(1)
    denied = access(served, reader_key, patient, scope=SCOPE, purpose=PURPOSE)
    assert denied.status_code == 403, denied.text
    assert (denied.json()["code"], denied.json()["details"]["reason"]) == ("consent_required", "revoked")

    # The page lists every attempt, newest first, break-glass marked.
    page.get_by_role("button", name="Refresh").click()
    status_says(page, "Up to date")
    entries = page.locator("#accesses > li")
    expect(entries).to_have_count(3)
    expect(entries.nth(0)).to_contain_text("Refused because you had withdrawn your consent")
    expect(entries.nth(1)).to_have_class(re.compile("break-glass"))
    expect(entries.nth(1)).to_contain_text("Emergency access")
    expect(entries.nth(2)).to_contain_text("Allowed with your consent")
    expect(page.locator("#receipts > li")).to_have_count(2)
    page.locator("#consents-ended-box summary").click()
    page.screenshot(path=artifacts / "patient-2-dashboard.png", full_page=True)
    if os.environ.get("CARELEDGER_UPDATE_DOCS_SCREENSHOT") == "1":
        DOCS_SCREENSHOT.parent.mkdir(exist_ok=True)
        page.screenshot(path=DOCS_SCREENSHOT, full_page=True)

    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    page.screenshot(path=artifacts / "patient-3-phone.png", full_page=True)
    # A guardian, appointed and removed.
    guardian = "0x" + "ab" * 20
    page.get_by_label("Guardian's address (0x…)").fill(guardian)
    page.get_by_role("button", name="Sign and appoint guardian").click()
    status_says(page, r"Guardian appointed\. Transaction 0x[0-9a-f]{64} confirmed")
    page.get_by_role("button", name=re.compile("^Remove guardian")).click()
    status_says(page, r"Guardian removed\. Transaction 0x[0-9a-f]{64} confirmed")
    expect(page.locator("#guardians")).to_contain_text("You have no guardian")
    context.close()


def test_a_browser_wallet_signs_in_and_grants_with_eth_sign_typed_data_v4(
    served: RunningService,
    browser: Browser,
) -> None:
    """An EIP-1193 provider stands in for a wallet extension; Python signs what the page asks it to."""
    make_app(served, "Wallet Clinic", ["reader"])
    account: LocalAccount = Account.create()
    asked: list[str] = []

    def wallet(method: str, params_json: str) -> Any:
        asked.append(method)
        params = json.loads(params_json)
        if method == "eth_requestAccounts":
            return [account.address.lower()]
        assert method == "eth_signTypedData_v4" and params[0] == account.address
        return "0x" + sign_typed_data(account, json.loads(params[1])).hex()

    context = browser.new_context()
    context.expose_function("careledgerTestWallet", wallet)
    context.add_init_script(
        "window.ethereum = { request: ({ method, params }) => "
        "window.careledgerTestWallet(method, JSON.stringify(params || [])) };"
    )
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{served.base}/patient/")
    expect(page.locator("body[data-ready=true]")).to_be_attached()
    page.get_by_role("button", name="Connect wallet").click()
    expect(page.locator("#address")).to_have_text(account.address)
    expect(page.get_by_role("button", name="Download key backup")).to_be_hidden()
    page.get_by_label("Organisation").select_option(label="Wallet Clinic")

    # The chain is down (as the API says it): a plain message, nothing else.
    unreachable = {"code": "chain_unavailable", "message": "the chain node cannot be reached", "details": {}}
    page.route(
        "**/v1/patient/grants", lambda route: route.fulfill(status=503, json=unreachable, headers={"Retry-After": "5"})
    )
    page.get_by_role("button", name="Sign and give consent").click()
    expect(page.locator("#error")).to_have_text(re.compile("blockchain cannot be reached right now"))
    page.unroute("**/v1/patient/grants")

    page.get_by_role("button", name="Sign and give consent").click()
    status_says(page, r"Consent given to Wallet Clinic\. Transaction 0x[0-9a-f]{64} confirmed in block \d+")
    expect(page.locator("#consents-current .consent.active")).to_contain_text("Wallet Clinic")
    assert asked == ["eth_requestAccounts"] + ["eth_signTypedData_v4"] * 3  # sign-in, refused grant, grant
    context.close()
