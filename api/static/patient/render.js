// Plain-language views of consents, guardians and the access trail. Text only (textContent): data
// from the ledger is never parsed as HTML.

const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium" });
const timeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const FAR_FUTURE = 253402300799; // 9999-12-31: shown as "until you withdraw it"

export const day = (seconds) => dateFormat.format(new Date(seconds * 1000));
export const moment = (seconds) => timeFormat.format(new Date(seconds * 1000));
export const shortHash = (hash) => `${hash.slice(0, 10)}…${hash.slice(-6)}`;

function el(tag, { className, text, attrs } = {}, ...children) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
  node.append(...children.filter(Boolean));
  return node;
}

export class Labels {
  constructor(organisations, scopes, purposes) {
    this.organisations = new Map(organisations.map((o) => [o.address.toLowerCase(), o.name]));
    this.scopes = new Map(scopes.map((s) => [s.code, s.label]));
    this.purposes = new Map(purposes.map((p) => [p.code, p.label]));
  }

  organisation(address, name) {
    return name || this.organisations.get(address.toLowerCase()) || `the organisation at ${address}`;
  }

  scope(code) {
    return this.scopes.get(code) || `data of type “${code}”`;
  }

  purpose(code) {
    return this.purposes.get(code) || code;
  }
}

/** The consent's state now, by the wall clock (an idle chain's clock can lag behind). */
export function stateNow(consent, now) {
  if (consent.state === "revoked" || consent.state === "none") return consent.state;
  if (now >= consent.validUntil) return "expired";
  if (now < consent.validFrom) return "pending";
  return "active";
}

const ENDED = { revoked: "Withdrawn", expired: "Ended" };

export function consentItem(consent, state, labels, onRevoke) {
  const who = labels.organisation(consent.grantee, consent.granteeOrganisation);
  const what = `${labels.scope(consent.scope)}, for ${labels.purpose(consent.purpose)}`;
  let when;
  if (state === "revoked") when = `You withdrew this consent on ${day(consent.updatedAt)}.`;
  else if (state === "expired") when = `This consent ended on ${day(consent.validUntil)}.`;
  else if (state === "pending") when = `Starts on ${day(consent.validFrom)}, until ${day(consent.validUntil)}.`;
  else if (consent.validUntil >= FAR_FUTURE) when = "Until you withdraw it.";
  else when = `Until ${day(consent.validUntil)}.`;
  const item = el("li", { className: `card consent ${state}` },
    el("p", { className: "who", text: who }),
    el("p", { text: `May see your ${what}.` }),
    el("p", { className: "when", text: when }));
  if (ENDED[state]) item.prepend(el("span", { className: "badge", text: ENDED[state] }));
  if (state === "active" || state === "pending") {
    const button = el("button", { className: "danger", text: "Withdraw consent",
      attrs: { type: "button", "aria-label": `Withdraw consent: ${who}, ${what}` } });
    button.addEventListener("click", () => onRevoke(consent, button));
    item.append(button);
  }
  return item;
}

const DENIAL = {
  revoked: "you had withdrawn your consent",
  expired: "your consent had ended",
  not_yet_valid: "your consent had not started yet",
  no_consent: "you had not given consent",
  not_authorised_for_break_glass: "it is not authorised for emergency access",
};

export function accessItem(entry, labels) {
  const who = labels.organisation(entry.organisation.address, entry.organisation.name);
  const what = `your ${labels.scope(entry.scope)}, for ${labels.purpose(entry.purpose)}`;
  const time = el("time", { text: moment(entry.time), attrs: { datetime: new Date(entry.time * 1000).toISOString() } });
  if (entry.breakGlass) {
    return el("li", { className: "card access break-glass" },
      el("span", { className: "badge", text: "⚠ Emergency access" }),
      el("p", { className: "who", text: `${who} opened ${what} without your consent, as an emergency.` }),
      el("p", { text: `Reason given: ${entry.reason || "none"}. This is recorded on the blockchain` +
        (entry.breakGlassTx ? ` (transaction ${shortHash(entry.breakGlassTx)}).` : ".") }),
      el("p", { className: "when" }, time));
  }
  const allowed = entry.decision === "allowed";
  const outcome = allowed ? "Allowed" : "Refused";
  const why = allowed ? "with your consent" : `because ${DENIAL[entry.reason] || entry.reason || "it was not permitted"}`;
  return el("li", { className: `card access ${allowed ? "allowed" : "denied"}` },
    el("span", { className: "badge", text: outcome }),
    el("p", { className: "who", text: `${who} asked to see ${what}.` }),
    el("p", { text: `${outcome} ${why}.` }),
    el("p", { className: "when" }, time));
}

const ACCOUNTING_DENIAL = { ...DENIAL, not_an_emergency_purpose: "the purpose given is no emergency" };

/** One entry of the accounting of disclosures, shown from the entry (whose receipt check compares it
 *  with its anchored document); its receipt verdict is filled in by markEntry. */
export function accountingItem(entry) {
  const who = entry.recipient.name;
  const what = `your ${entry.description}, for ${entry.purposeDescription}`;
  let text;
  if (entry.decision === "break_glass") {
    text = `${who} opened ${what} without your consent, as an emergency (reason given: ${entry.reason || "none"}).`;
  } else if (entry.decision === "allowed") {
    text = `${who} saw ${what}, with your consent.`;
  } else {
    text = `${who} asked to see ${what}. Refused because ${ACCOUNTING_DENIAL[entry.reason] || entry.reason || "it was not permitted"}.`;
  }
  const time = el("time", { text: `${entry.date.replace("T", " ").replace(/\.\d+Z$/, " UTC")}`,
    attrs: { datetime: entry.date } });
  return el("li", { className: `card entry ${entry.decision.replace("_", "-")}`,
    attrs: { "data-record-id": entry.recordId, "data-receipt": "checking" } },
  el("p", { className: "who", text: who }),
  el("p", { text }),
  el("p", { className: "hint" }, el("span", { className: "mono", text: `Account ${entry.recipient.account}` }),
    document.createTextNode(` · ${postalLine(entry.recipient.postalAddress)}`)),
  el("p", { className: "when" }, time),
  el("p", { className: "receipt-check", text: "Checking the receipt…" }));
}

/** A recipient's postal address in one line (as the printable accounting shows it), or why there is none. */
function postalLine(address) {
  if (!address) return "postal address not registered with CareLedger";
  return [...address.lines, address.postalCode, address.city, address.state, address.country]
    .filter(Boolean).join(", ");
}

const VERDICTS = {
  valid: (v, receipt) => `✓ Receipt valid: anchored in block ${receipt.blockNumber} (transaction ${shortHash(receipt.transactionHash)}).`,
  invalid: (v) => `✗ Receipt INVALID: ${v.failing.detail} (step “${v.failing.step}”).`,
  pending: () => "Not anchored yet: there is no receipt to check yet.",
  unchecked: (v) => `? Could not be checked: ${v.problem}`,
};

/** Show an entry's receipt verdict (checkEntry's). */
export function markEntry(item, verdict, receipt) {
  item.dataset.receipt = verdict.state;
  if (verdict.failing) item.dataset.failingStep = verdict.failing.step;
  item.querySelector(".receipt-check").textContent = VERDICTS[verdict.state](verdict, receipt);
}

/** Offer `text` as a file download named `name`. */
export function saveFile(text, type, name) {
  const link = el("a", { attrs: { download: name } });
  link.href = URL.createObjectURL(new Blob([text], { type }));
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 1000);
}

export function guardianItem(guardian, onRemove) {
  const item = el("li", { className: "card guardian" },
    el("p", { className: "who mono", text: guardian.guardian }),
    el("p", { className: "when", text: `May act for you until ${day(guardian.validUntil)}.` }));
  const button = el("button", { className: "danger", text: "Remove guardian",
    attrs: { type: "button", "aria-label": `Remove guardian ${guardian.guardian}` } });
  button.addEventListener("click", () => onRemove(guardian, button));
  item.append(button);
  return item;
}

export function receiptItem(text, relayed) {
  return el("li", { className: "card receipt" },
    el("p", { text }),
    el("p", { className: "mono", text: `Transaction ${relayed.transactionHash}` }),
    el("p", { className: "confirmed", text: `Confirmed in block ${relayed.blockNumber}` }));
}

export function emptyItem(text) {
  return el("li", { className: "empty", text });
}

export function option(value, text) {
  const node = el("option", { text });
  node.value = value;
  return node;
}
