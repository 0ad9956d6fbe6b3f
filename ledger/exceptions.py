"""The one exception hierarchy of CareLedger.

Every error the library raises on purpose derives from :class:`LedgerError`. Families group errors
by who can fix them: the caller (:class:`InputError`), the chain (:class:`ChainError`), or the
ledger's own state (:class:`IntegrityError`). Variants that callers also catch as built-ins take
both bases, as in web3.py (``class InvalidInputError(InputError, ValueError)``).

Each class carries a stable machine-readable ``code``; the API maps classes to HTTP status in one
table (``api/errors.py``) and never invents codes of its own.
"""

from __future__ import annotations

from typing import Any


class LedgerError(Exception):
    """Root of every error CareLedger raises on purpose."""

    code: str = "ledger_error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details


# --- caller mistakes -------------------------------------------------------------------------


class InputError(LedgerError, ValueError):
    """The caller passed something malformed; retrying the same call fails the same way."""

    code = "invalid_input"


class InvalidHexError(InputError):
    """A value that must be hex (digest, address, signature) is not, or has the wrong length."""

    code = "invalid_hex"


class InvalidDocumentError(InputError):
    """A record document cannot be canonicalised (not JSON, non-finite numbers, bad strings)."""

    code = "invalid_document"


class InvalidJsonError(InvalidDocumentError):
    """The text is not JSON: a syntax error, ``NaN`` or ``Infinity``, or bytes that are not UTF-8."""

    code = "invalid_json"


class DuplicateKeyError(InvalidDocumentError):
    """A JSON object repeats a key: parsers disagree on which value wins, so it has no one digest."""

    code = "duplicate_key"


class InexactNumberError(InvalidDocumentError):
    """A JSON number that an IEEE double (what RFC 8785 reads numbers as) cannot hold exactly: its
    digest would be that of a different number."""

    code = "inexact_number"


class NestingTooDeepError(InvalidDocumentError):
    """A JSON document or value nests arrays and objects deeper than the limit."""

    code = "nesting_too_deep"


class InvalidFhirError(InvalidDocumentError):
    """The document names a FHIR resource type but is not a valid resource of that type."""

    code = "invalid_fhir"


class UnsupportedFhirError(InputError):
    """A valid FHIR resource asks for what the ledger cannot hold as it says (a deny or nested
    provision, a purpose or data class it has no code for): refused whole, never narrowed or widened.
    ``details['expression']`` is the FHIRPath of the element."""

    code = "fhir_not_supported"


class UnsupportedFhirVersionError(InputError):
    """A content type asks for a FHIR version documents are not validated as (``fhirVersion=3.0``)."""

    code = "unsupported_fhir_version"


class InvalidCodeError(InputError):
    """A scope, purpose or reason code is empty, too long or has characters outside the code alphabet."""

    code = "invalid_code"


class DuplicateError(InputError):
    """Something with that name already exists."""

    code = "already_exists"


class InvalidNameError(InputError):
    """A name shown to people holds characters that hide or reorder text (zero-width, bidi controls)."""

    code = "invalid_name"


class InvalidTextError(InputError):
    """Other text shown to people (a postal address) holds characters that hide or reorder text."""

    code = "invalid_text"


class ConfusableNameError(DuplicateError):
    """A name looks like an existing one (same skeleton: case, compatibility forms and look-alike
    letters aside)."""

    code = "confusable_name"


class InvalidProofError(InputError):
    """A Merkle proof or receipt is structurally malformed (not merely failing to verify)."""

    code = "invalid_proof"


class InvalidSignatureError(InputError):
    """A signature is malformed or does not come from the expected signer."""

    code = "invalid_signature"


class SignatureExpiredError(InvalidSignatureError):
    """A signed request's deadline has passed; the signer must sign again."""

    code = "signature_expired"


class WrongOriginError(InvalidSignatureError):
    """A patient's sign-in was made for another service (another origin)."""

    code = "wrong_origin"


class ChallengeError(InvalidSignatureError):
    """A sign-in challenge is unknown, used already, expired, or was issued to another patient."""

    code = "invalid_challenge"


class InvalidPeriodError(InputError):
    """A requested period ends before it starts."""

    code = "invalid_period"


class PeriodTooLongError(InvalidPeriodError):
    """A requested period is longer than an accounting of disclosures covers (six years)."""

    code = "period_too_long"


class AccountingTooLargeError(InputError):
    """An accounting of disclosures would hold more entries than one answer carries; a shorter
    period splits it."""

    code = "accounting_too_large"


class NotFoundError(LedgerError, LookupError):
    """The thing asked for does not exist (unknown record, root, deployment)."""

    code = "not_found"


# --- the chain -------------------------------------------------------------------------------


class ChainError(LedgerError):
    """Talking to the chain failed in a way the caller did not cause."""

    code = "chain_error"


class ChainUnavailableError(ChainError, ConnectionError):
    """The node cannot be reached; the call may succeed later."""

    code = "chain_unavailable"


class ChainLockedError(ChainError):
    """Another process holds the embedded chain's data directory for writing."""

    code = "chain_locked"


class ContractRevertError(ChainError):
    """A contract call reverted. ``error`` is the decoded custom error's name, ``args`` its arguments.

    Reverts are usually the caller's doing (a consent that does not exist, a root anchored twice);
    the API maps them by ``error`` name.
    """

    code = "contract_revert"

    def __init__(self, error: str, args: dict[str, Any] | None = None, message: str = "") -> None:
        self.error = error
        self.args_by_name: dict[str, Any] = dict(args or {})
        super().__init__(message or f"contract reverted with {error}", error=error, args=self.args_by_name)


class TransactionFailedError(ChainError):
    """A transaction was mined but failed, or never got mined."""

    code = "transaction_failed"


class TransactionTimeoutError(TransactionFailedError):
    """A sent transaction was not mined within the receipt timeout; it may still be mined later."""

    code = "transaction_timeout"


class TransactionDroppedError(TransactionFailedError):
    """A sent transaction left the node's pool unmined, or another transaction took its nonce.
    Nothing it would have done happened; sending again is safe."""

    code = "transaction_dropped"


class DeploymentError(ChainError):
    """The recorded deployment does not match the chain (other chain id, code missing)."""

    code = "deployment_mismatch"


class OutdatedDeploymentError(DeploymentError):
    """The data directory or node was deployed with other contracts than this release ships (an
    earlier version, whose rules differ); they cannot be migrated: the operator must redeploy."""

    code = "deployment_outdated"


# --- the off-chain store ---------------------------------------------------------------------


class StoreError(LedgerError):
    """The off-chain store cannot serve the request (locked by another process, or unreachable)."""

    code = "store_error"


class StoreLockedError(StoreError):
    """Another process has the SQLite store open for writing (one API process per SQLite store;
    several replicas need PostgreSQL)."""

    code = "store_locked"


class StoreUnavailableError(StoreError, ConnectionError):
    """The off-chain database cannot be reached (PostgreSQL down or the connection dropped); retry later.

    Nothing of the failed request was committed."""

    code = "store_unavailable"


class StorageFullError(StoreError):
    """The disk under a SQLite file of the data directory (the store, or the embedded chain's) is
    full: nothing of the failed write was committed, and the same write succeeds once space is freed."""

    code = "storage_full"


# --- ledger integrity ------------------------------------------------------------------------


class IntegrityError(LedgerError):
    """Something the ledger relies on does not hold (artifacts out of date, store corrupt)."""

    code = "integrity_error"


class ArtifactError(IntegrityError):
    """Compiled contract artifacts are missing or do not match the sources."""

    code = "artifact_error"


class PackageDataError(IntegrityError):
    """A file the package ships is missing or not the pinned one (no schema migrations in a
    migrations package, a vendored script whose hash differs from its pin): a broken install."""

    code = "package_data_error"


# --- callers of the service ------------------------------------------------------------------


class AuthenticationError(LedgerError):
    """No API key, or one that does not belong to a live app."""

    code = "unauthenticated"


class InvalidAccessTokenError(AuthenticationError):
    """A bearer access token that is unknown, expired, or whose app was revoked (RFC 6750 ``invalid_token``)."""

    code = "invalid_token"


class PermissionDeniedError(LedgerError):
    """The caller is known but may not do this (missing role, another organisation's data)."""

    code = "forbidden"


class InsufficientScopeError(PermissionDeniedError):
    """An access token whose scopes do not cover this endpoint (RFC 6750 ``insufficient_scope``), even
    if its app's API key would; ``details['scope']`` names the scopes that would."""

    code = "insufficient_scope"


class NotPatientOrGuardianError(PermissionDeniedError):
    """A consent change is signed by someone who is neither the patient nor a current guardian."""

    code = "not_patient_or_guardian"


class NotEmergencyPurposeError(PermissionDeniedError):
    """Break-glass access was asked for a purpose outside the ConsentRegistry's emergency purposes
    (research or payment, say): that needs the patient's consent."""

    code = "not_an_emergency_purpose"


class ConsentDeniedError(PermissionDeniedError):
    """The patient's consent does not permit this access; ``details['reason']`` says why."""

    code = "consent_required"


class ConflictError(LedgerError):
    """The request conflicts with what exists."""

    code = "conflict"


class AlreadyChangedError(ConflictError):
    """The record was already amended or retracted: a record is changed at most once (amended or
    retracted, not both), whether the store's check or its constraint found the earlier change."""

    code = "already_changed"


class NotChangeableError(ConflictError):
    """The record is of a kind that is never amended or retracted (an audit-trail entry)."""

    code = "not_changeable"


class PayloadTooLargeError(InputError):
    """The request body or one of its parts is over the configured limit."""

    code = "payload_too_large"


class TooManyElementsError(PayloadTooLargeError):
    """A JSON document or value holds more values than the limit."""

    code = "too_many_elements"


class IdempotencyKeyReusedError(InputError):
    """An ``Idempotency-Key`` that answered one request was sent with another (other path or body)."""

    code = "idempotency_key_reused"


class NotRegularFileError(InputError):
    """A file to read is a symbolic link, FIFO, device or other non-regular file: refused unread
    (reading one could follow a link out of its folder, block forever or never end)."""

    code = "not_a_regular_file"


class TokenRequestError(InputError):
    """A token request refused as RFC 6749 section 5.2 says: ``code`` is the OAuth ``error`` and the
    answer is ``{"error", "error_description"}``, the one error body that is not ``{code, message,
    details}`` (OAuth clients read that shape). This class itself is ``invalid_request``: a parameter
    missing, repeated, or not understood."""

    code = "invalid_request"


class InvalidClientError(TokenRequestError):
    """The client could not be authenticated: unknown, revoked or without keys, or its assertion is
    malformed, expired, replayed, meant for another audience, or not signed by one of its keys."""

    code = "invalid_client"


class InvalidScopeError(TokenRequestError):
    """The requested scope is malformed, or none of it may be granted to this client."""

    code = "invalid_scope"


class UnsupportedGrantTypeError(TokenRequestError):
    """A grant other than ``client_credentials`` (the only one this server offers)."""

    code = "unsupported_grant_type"


class RateLimitedError(LedgerError):
    """Too many requests from one client or about one patient; ``details['retry_after']`` says when to retry."""

    code = "rate_limited"


class ServerBusyError(LedgerError):
    """More large documents are waiting to be parsed and hashed than the server queues; nothing was
    done: retry later (the queue bounds the memory that waiting request bodies hold)."""

    code = "server_busy"
