// The patient page: wires the key, the ledger and the views together.
import { api, ApiError } from "./api.js";
import { PatientLedger, nowSeconds } from "./ledger.js";
import { checkEntry, nodeFor } from "./receipts.js";
import * as view from "./render.js";
import * as wallet from "./wallet.js";

const $ = (id) => document.getElementById(id);
const REFRESH_MS = 15000;
const state = { signing: null, anchoring: null, labels: null, ledger: null, timer: null, period: null };
const ACCOUNTING_LISTS = { disclosures: "accounting-disclosures", breakGlass: "accounting-break-glass",
  denied: "accounting-denied" };

// --- messages ------------------------------------------------------------------------------------

function say(text) {
  $("error").hidden = true;
  $("status").textContent = text;
}

function fail(err) {
  const known = err instanceof ApiError || err instanceof wallet.WalletError;
  if (!known) console.error(err);
  $("status").textContent = "";
  $("error").textContent = known ? err.message : "Something went wrong in this page. Please reload it and try again.";
  $("error").hidden = false;
}

function progress(what) {
  let shown = -1;
  return (fraction) => {
    const percent = Math.floor(fraction * 10) * 10;
    if (percent !== shown) $("status").textContent = `${what}… ${(shown = percent)}%`;
  };
}

/** Run `task` with the form's buttons disabled; any error becomes a message. */
async function busy(control, task) {
  const buttons = control.tagName === "FORM" ? [...control.querySelectorAll("button")] : [control];
  buttons.forEach((b) => { b.disabled = true; });
  control.setAttribute("aria-busy", "true");
  try {
    await task();
  } catch (err) {
    fail(err);
  } finally {
    buttons.forEach((b) => { b.disabled = false; });
    control.removeAttribute("aria-busy");
  }
}

// --- screens -------------------------------------------------------------------------------------

function show(screen) {
  for (const id of ["start", "locked", "dashboard"]) $(id).hidden = id !== screen;
}

function showKeyScreen() {
  const address = wallet.storedAddress();
  if (address) {
    $("locked-address").textContent = address;
    show("locked");
  } else {
    show("start");
  }
}

async function enter(signer) {
  state.ledger = new PatientLedger(signer, state.signing);
  say("Signing in…");
  await state.ledger.signIn();
  $("address").textContent = signer.address;
  $("download-key").hidden = signer.kind !== "local";
  show("dashboard");
  await refresh();
  clearInterval(state.timer);
  state.timer = setInterval(() => {
    if (document.visibilityState === "visible" && state.ledger) refresh().catch(fail);
  }, REFRESH_MS);
}

function lock() {
  clearInterval(state.timer);
  state.ledger = null;
  for (const id of ["consents-current", "consents-ended", "accesses", "guardians", "receipts",
    ...Object.values(ACCOUNTING_LISTS)]) $(id).replaceChildren();
  $("accounting").hidden = true;
  state.period = null;
  showKeyScreen();
  say("Locked. Your key is no longer in this page's memory.");
}

// --- reading -------------------------------------------------------------------------------------

async function refresh() {
  const [listed, accesses] = await Promise.all([state.ledger.consents(), state.ledger.accesses()]);
  const now = nowSeconds();
  const current = [];
  const ended = [];
  for (const consent of listed.consents) {
    const stateNow = view.stateNow(consent, now);
    const item = view.consentItem(consent, stateNow, state.labels, revoke);
    (stateNow === "active" || stateNow === "pending" ? current : ended).push(item);
  }
  $("consents-current").replaceChildren(...(current.length ? current
    : [view.emptyItem("No organisation holds your consent at the moment.")]));
  $("consents-ended").replaceChildren(...ended);
  $("ended-count").textContent = String(ended.length);
  const guardians = listed.guardians.filter((g) => g.active).map((g) => view.guardianItem(g, removeGuardian));
  $("guardians").replaceChildren(...(guardians.length ? guardians : [view.emptyItem("You have no guardian.")]));
  const items = accesses.slice().reverse().map((entry) => view.accessItem(entry, state.labels));
  $("accesses").replaceChildren(...(items.length ? items : [view.emptyItem("Nobody has asked for your data yet.")]));
}

async function loadChoices() {
  const [organisations, scopes, purposes] = await Promise.all([
    api("/v1/patient/organisations"), api("/v1/patient/scopes"), api("/v1/patient/purposes")]);
  state.labels = new view.Labels(organisations.organisations, scopes.codes, purposes.codes);
  const chosen = $("grant-organisation").value;
  $("grant-organisation").replaceChildren(view.option("", "Choose an organisation…"),
    ...organisations.organisations.map((o) => view.option(o.address, o.name)));
  $("grant-organisation").value = chosen;
  $("grant-scope").replaceChildren(...scopes.codes.map((s) => view.option(s.code, `${s.label} (${s.code})`)));
  $("grant-purpose").replaceChildren(...purposes.codes.map((p) => view.option(p.code, `${p.label} (${p.code})`)));
}

// --- changing ------------------------------------------------------------------------------------

const dayStart = (value) => Math.floor(new Date(`${value}T00:00:00`).getTime() / 1000);
const isoDay = (date) => date.toLocaleDateString("sv"); // YYYY-MM-DD in local time

function recorded(text, relayed) {
  $("receipts").prepend(view.receiptItem(text, relayed));
  say(`${text} Transaction ${relayed.transactionHash} confirmed in block ${relayed.blockNumber}.`);
}

async function grant(event) {
  event.preventDefault();
  const form = event.currentTarget;
  await busy(form, async () => {
    const validFrom = Math.min(dayStart($("grant-from").value), nowSeconds());
    const validUntil = dayStart($("grant-until").value) + 86400;
    if (!(validUntil > validFrom) || validUntil <= nowSeconds()) {
      throw new wallet.WalletError("The end date must be today or later, and after the start date.");
    }
    const grantee = $("grant-organisation").value;
    if (!grantee) throw new wallet.WalletError("Choose an organisation.");
    const terms = { grantee, scope: $("grant-scope").value, purpose: $("grant-purpose").value, validFrom, validUntil };
    say("Signing and sending your consent…");
    const relayed = await state.ledger.grant(terms);
    recorded(`Consent given to ${state.labels.organisation(grantee)}.`, relayed);
    await refresh();
  });
}

async function revoke(consent, button) {
  const who = state.labels.organisation(consent.grantee, consent.granteeOrganisation);
  if (!window.confirm(`Withdraw the consent of ${who} to see your ${state.labels.scope(consent.scope)}?`)) return;
  await busy(button, async () => {
    say("Signing and sending the withdrawal…");
    const relayed = await state.ledger.revoke(consent);
    recorded(`Consent of ${who} withdrawn.`, relayed);
    await refresh();
  });
}

async function appointGuardian(event) {
  event.preventDefault();
  const form = event.currentTarget;
  await busy(form, async () => {
    const until = dayStart($("guardian-until").value) + 86400;
    if (until <= nowSeconds()) throw new wallet.WalletError("The guardian's end date must be today or later.");
    say("Signing and sending the appointment…");
    const relayed = await state.ledger.setGuardian($("guardian-address").value, until);
    recorded("Guardian appointed.", relayed);
    form.reset();
    $("guardian-until").value = isoDay(new Date(Date.now() + 365 * 86400000));
    await refresh();
  });
}

async function removeGuardian(guardian, button) {
  if (!window.confirm(`Remove ${guardian.guardian} as your guardian?`)) return;
  await busy(button, async () => {
    say("Signing and sending the removal…");
    recorded("Guardian removed.", await state.ledger.setGuardian(guardian.guardian, 0));
    await refresh();
  });
}

// --- the accounting of disclosures -----------------------------------------------------------------

const utcDay = (date) => date.toISOString().slice(0, 10);

/** The first day of the six years that end with `day` (YYYY-MM-DD), as the service counts them. */
function sixYearsEndingWith(day) {
  const next = new Date(`${day}T00:00:00Z`);
  next.setUTCDate(next.getUTCDate() + 1);
  return utcDay(new Date(Date.UTC(next.getUTCFullYear() - 6, next.getUTCMonth(), next.getUTCDate())));
}

async function checkAccounting(accounting) {
  const node = nodeFor(state.anchoring);
  const deployment = { chainId: state.anchoring.chainId, recordAnchor: state.anchoring.recordAnchor };
  $("accounting-node").textContent = `Receipts are checked in this page (digest, leaf and Merkle proof); their roots `
    + `against ${node.describe}, on chain ${deployment.chainId}, RecordAnchor ${deployment.recordAnchor}.`;
  const checks = [];
  for (const [section, list] of Object.entries(ACCOUNTING_LISTS)) {
    const entries = accounting[section] || [];
    const items = entries.map((entry) => view.accountingItem(entry));
    $(list).replaceChildren(...(items.length ? items : [view.emptyItem("None in this period.")]));
    entries.forEach((entry, i) => checks.push(checkEntry(entry, state.ledger.patient, deployment, node)
      .catch((err) => ({ state: "unchecked", checks: [], failing: null, problem: String(err?.message || err) }))
      .then((verdict) => { view.markEntry(items[i], verdict, entry.receipt); return verdict.state; })));
  }
  const states = await Promise.all(checks);
  const count = (s) => states.filter((x) => x === s).length;
  const parts = [`${count("valid")} of ${states.length} receipts valid`];
  if (count("invalid")) parts.push(`${count("invalid")} INVALID`);
  if (count("pending")) parts.push(`${count("pending")} not anchored yet`);
  if (count("unchecked")) parts.push(`${count("unchecked")} could not be checked`);
  return `${parts.join(", ")}.`;
}

async function downloadAccounting(event) {
  event.preventDefault();
  const form = event.currentTarget;
  await busy(form, async () => {
    const period = { from: $("accounting-from").value, to: $("accounting-to").value };
    say("Fetching your accounting of disclosures…");
    const text = await state.ledger.disclosures(period.from, period.to);
    view.saveFile(text, "application/json",
      `accounting-of-disclosures-${state.ledger.patient}-${period.from}-${period.to}.json`);
    const accounting = JSON.parse(text);
    state.period = period;
    $("accounting").hidden = false;
    $("accounting-summary").textContent = "Checking every receipt…";
    say("Checking every receipt…");
    const summary = accounting.patient === state.ledger.patient ? await checkAccounting(accounting)
      : "This accounting is about another patient: nothing in it was checked.";
    $("accounting-summary").textContent = summary;
    say(`Accounting of disclosures from ${period.from} to ${period.to} downloaded. ${summary}`);
  });
}

async function downloadAccountingAs(button, format, type, suffix) {
  await busy(button, async () => {
    const { from, to } = state.period;
    const text = await state.ledger.disclosures(from, to, format);
    view.saveFile(text, type, `accounting-of-disclosures-${state.ledger.patient}-${from}-${to}.${suffix}`);
  });
}

// --- the key -------------------------------------------------------------------------------------

async function createKey(event) {
  event.preventDefault();
  await busy(event.currentTarget, async () => {
    const passphrase = $("create-passphrase").value;
    if (passphrase !== $("create-confirm").value) throw new wallet.WalletError("The two passphrases differ.");
    const signer = await wallet.createKey(passphrase, progress("Encrypting your key"));
    event.target.reset();
    try {
      await enter(signer);
    } catch (err) {
      showKeyScreen(); // the key is stored: offer to unlock it
      throw err;
    }
    say("Your key is ready and stored encrypted on this device. Download a backup and keep it somewhere safe.");
  });
}

async function unlockKey(event) {
  event.preventDefault();
  await busy(event.currentTarget, async () => {
    const signer = await wallet.unlock($("unlock-passphrase").value, progress("Unlocking your key"));
    event.target.reset();
    await enter(signer);
    say("Unlocked. Your consents and the accesses to your data are below.");
  });
}

async function importKey(event) {
  event.preventDefault();
  await busy(event.currentTarget, async () => {
    const file = $("import-file").files[0];
    if (!file) throw new wallet.WalletError("Choose your backup file first.");
    const address = wallet.importKeystore(await file.text());
    event.target.reset();
    showKeyScreen();
    say(`Backup of ${address} imported. Unlock it with its passphrase.`);
    $("unlock-passphrase").focus();
  });
}

function forget() {
  if (!window.confirm("Remove the key from this device? Without your backup file you cannot change your consents again.")) return;
  wallet.forgetKey();
  showKeyScreen();
  say("The key was removed from this device.");
}

// --- start ---------------------------------------------------------------------------------------

async function boot() {
  $("create-form").addEventListener("submit", createKey);
  $("unlock-form").addEventListener("submit", unlockKey);
  $("import-form").addEventListener("submit", importKey);
  $("forget-key").addEventListener("click", forget);
  $("connect-wallet").addEventListener("click", (e) => busy(e.currentTarget, async () => enter(await wallet.connectBrowserWallet())));
  $("download-key").addEventListener("click", () => { try { wallet.downloadKeystore(); } catch (err) { fail(err); } });
  $("refresh").addEventListener("click", (e) => busy(e.currentTarget, async () => { await loadChoices(); await refresh(); say("Up to date."); }));
  $("lock").addEventListener("click", lock);
  $("grant-form").addEventListener("submit", grant);
  $("guardian-form").addEventListener("submit", appointGuardian);
  $("accounting-form").addEventListener("submit", downloadAccounting);
  $("accounting-page").addEventListener("click", (e) => downloadAccountingAs(e.currentTarget, "html", "text/html", "html"));
  $("accounting-fhir").addEventListener("click",
    (e) => downloadAccountingAs(e.currentTarget, "fhir", "application/fhir+json", "fhir.json"));
  $("accounting-to").value = utcDay(new Date());
  $("accounting-from").value = sixYearsEndingWith($("accounting-to").value);
  $("grant-from").value = isoDay(new Date());
  $("grant-until").value = isoDay(new Date(Date.now() + 365 * 86400000));
  $("guardian-until").value = isoDay(new Date(Date.now() + 365 * 86400000));
  $("wallet-card").hidden = !wallet.hasBrowserWallet();
  showKeyScreen();
  try {
    [state.signing, state.anchoring] = await Promise.all([api("/v1/patient/signing"), api("/v1/patient/anchoring"),
      loadChoices()]);
    document.body.dataset.ready = "true";
  } catch (err) {
    fail(err);
  }
}

boot();
