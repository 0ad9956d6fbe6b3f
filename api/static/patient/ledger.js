// What the patient does with the ledger: sign in, read, and sign changes the API relays.
import * as ethers from "./vendor/ethers.js";
import { api, ApiError } from "./api.js";
import { WalletError } from "./wallet.js";

export const DEADLINE_SECONDS = 600; // a signed change must reach the chain within 10 minutes
const SESSION_SECONDS = 3600;

export const nowSeconds = () => Math.floor(Date.now() / 1000);

/** A code as the contract stores it: ASCII, left-aligned in bytes32. */
export const code32 = (code) => ethers.hexlify(ethers.zeroPadBytes(ethers.toUtf8Bytes(code), 32));

/** A checksummed address from what the patient typed, or a message saying what is wrong with it. */
export function address(text) {
  try {
    return ethers.getAddress(text.trim());
  } catch {
    throw new WalletError("That is not a valid address: it has 0x and 40 hexadecimal characters.");
  }
}

export class PatientLedger {
  constructor(signer, signing) {
    this.signer = signer;
    this.signing = signing; // GET /v1/patient/signing: {consent: {domain, types}, session: {...}}
    this.session = null;
  }

  get patient() {
    return this.signer.address;
  }

  async signIn() {
    // A single-use challenge from the service; the signature names this page's own origin, so it
    // is refused anywhere else (and here, once used).
    const { challenge } = await api("/v1/patient/challenges", { method: "POST", body: { patient: this.patient } });
    const issuedAt = nowSeconds();
    const expiresAt = issuedAt + Math.min(SESSION_SECONDS, this.signing.maxSessionSeconds);
    const { domain, types } = this.signing.session;
    const message = { patient: this.patient, origin: window.location.origin, challenge, issuedAt, expiresAt };
    const signature = await this.signer.signTypedData({ domain, types, primaryType: "PatientSession", message });
    this.session = await api("/v1/patient/sessions", { method: "POST", body: { ...message, signature } });
  }

  /** A read with the session token; signs in again once if the session has ended. */
  async read(path, { text = false } = {}) {
    if (!this.session || this.session.expiresAt - 30 <= nowSeconds()) await this.signIn();
    try {
      return await api(path, { token: this.session.token, text });
    } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 401) throw err;
      await this.signIn();
      return api(path, { token: this.session.token, text });
    }
  }

  /** My accounting of disclosures for the days `from` to `to` (YYYY-MM-DD): `format` "" (JSON as
   *  sent, text), "html" (the printable page) or "fhir" (a Bundle of AuditEvents). */
  disclosures(from, to, format = "") {
    const query = new URLSearchParams({ from, to });
    return this.read(`/v1/patient/${this.patient}/disclosures${format ? `/${format}` : ""}?${query}`, { text: true });
  }

  consents() {
    return this.read(`/v1/patient/${this.patient}/consents`);
  }

  async accesses() {
    const entries = [];
    let after = 0;
    for (let page = 0; page < 10 && after !== null; page += 1) {
      const answer = await this.read(`/v1/patient/${this.patient}/accesses?limit=500&after=${after}`);
      entries.push(...answer.entries);
      after = answer.nextAfter;
    }
    return entries;
  }

  async #signAndRelay(primaryType, fields, path, body) {
    const { nonce } = await api(`/v1/patient/${this.patient}/nonce`);
    const deadline = nowSeconds() + DEADLINE_SECONDS;
    const { domain, types } = this.signing.consent;
    const message = { ...fields, nonce, deadline };
    const signature = await this.signer.signTypedData({ domain, types, primaryType, message });
    return api(path, { method: "POST", body: { ...body, deadline, signature } });
  }

  grant({ grantee, scope, purpose, validFrom, validUntil }) {
    const patient = this.patient;
    const signer = this.patient;
    return this.#signAndRelay("ConsentGrant",
      { patient, grantee, scope: code32(scope), purpose: code32(purpose), validFrom, validUntil, signer },
      "/v1/patient/grants", { patient, grantee, scope, purpose, validFrom, validUntil, signer });
  }

  revoke({ grantee, scope, purpose }) {
    const patient = this.patient;
    const signer = this.patient;
    return this.#signAndRelay("ConsentRevocation",
      { patient, grantee, scope: code32(scope), purpose: code32(purpose), signer },
      "/v1/patient/revocations", { patient, grantee, scope, purpose, signer });
  }

  /** Appoint a guardian until `validUntil`, or remove them with 0. */
  setGuardian(guardian, validUntil) {
    const patient = this.patient;
    guardian = address(guardian);
    return this.#signAndRelay("GuardianAppointment", { patient, guardian, validUntil },
      "/v1/patient/guardians", { patient, guardian, validUntil });
  }
}
