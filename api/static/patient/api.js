// Calls to the CareLedger API, and errors turned into sentences a patient can act on.

export class ApiError extends Error {
  constructor(status, code, message, details = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

const MESSAGES = {
  signature_expired: "The signature expired before it reached the ledger. Nothing was changed; please try again.",
  invalid_signature: "The ledger did not accept the signature. Nothing was changed; reload the page and try again.",
  chain_unavailable: "The ledger's blockchain cannot be reached right now. Nothing was changed; please try again in a minute.",
  unauthenticated: "Your session has ended. Unlock your key again to see your data.",
  wrong_origin: "This page is not the ledger's own page: sign in only at the address your care provider gave you.",
  invalid_challenge: "The sign-in took too long or was already used. Please try again.",
  not_patient_or_guardian: "Only you or a guardian you appointed can change your consents.",
  invalid_validity_window: "The end date must be after the start date.",
  consent_not_granted: "There is no active consent to withdraw.",
  invalid_guardian: "That address cannot be your guardian (it is empty or your own).",
  not_a_guardian: "That person is not your guardian.",
  missing_chain_role: "The ledger refused this change. Please contact the service operator.",
  invalid_period: "The period must end on or after the day it starts.",
  period_too_long: "An accounting covers at most six years: choose a later start date.",
  accounting_too_large: "That period holds too many entries for one download: choose a shorter period.",
};

function sentence(status, body, retryAfter) {
  const code = body?.code;
  if (code === "rate_limited") {
    return `Too many changes in a short time. Please wait ${retryAfter || "a few"} seconds and try again.`;
  }
  if (MESSAGES[code]) return MESSAGES[code];
  if (status === 503) return MESSAGES.chain_unavailable;
  if (code === "invalid_request") {
    const fields = (body.details?.errors || []).map((e) => e.field).filter(Boolean);
    return `Please check the form${fields.length ? ` (${fields.join(", ")})` : ""}.`;
  }
  if (status >= 500) return "Something went wrong on the server. It was not caused by you; please try again later.";
  return body?.message ? `The request was refused: ${body.message}.` : `The request failed (HTTP ${status}).`;
}

/** Call the API; resolves to the JSON answer (or with `text`, the body as sent) or rejects with an
 *  ApiError carrying a plain message. */
export async function api(path, { method = "GET", body, token, text = false } = {}) {
  const headers = { Accept: text ? "*/*" : "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new ApiError(0, "network", "Cannot reach the CareLedger service. Check your connection and try again.");
  }
  if (text && response.ok) return response.text();
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (response.ok) return data;
  const retryAfter = response.headers.get("Retry-After");
  throw new ApiError(response.status, data?.code || "http_error", sentence(response.status, data, retryAfter),
    data?.details || {});
}
