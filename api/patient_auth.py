"""Patient session tokens: issued for a verified ``PatientSession`` signature, scoped to one patient.

A token is ``v1.<payload>.<mac>``: the payload (base64url JSON ``{"p": patient, "iat", "exp"}``) and its
HMAC-SHA256 under a 32-byte server secret created on first use among the shared files (the data
directory's ``patient-session-secret``, mode 0600, or with replicas the store's shared documents),
so tokens survive a restart and every replica accepts them. Nothing is stored per token: a token is
valid until ``exp`` (at most an hour).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Annotated

import orjson
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.declared_errors import raises
from api.deps import Caller, ServiceDep, authenticate, bearer_credentials
from api.schemas.common import PatientPath
from ledger.exceptions import AuthenticationError, IntegrityError, PermissionDeniedError, StoreUnavailableError
from ledger.store.shared_files import SharedFiles
from ledger.values import checksum

SECRET_NAME = "patient-session-secret"
TOKEN_VERSION = "v1"

_patient_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="PatientSession",
    description="A patient session token from `POST /v1/patient/sessions`",
)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def shared_secret(files: SharedFiles) -> bytes:
    """The token secret: created once (32 random bytes, hex) in the shared files, so every replica
    of the service (they share the store) issues and accepts the same tokens."""
    text = files.create(SECRET_NAME, secrets.token_hex(32))
    secret = bytes.fromhex(text.strip())
    if len(secret) < 32:
        raise IntegrityError(f"the shared {SECRET_NAME} is shorter than 32 bytes")
    return secret


class SessionTokens:
    """Issues and checks patient session tokens with one secret."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self._secret, f"{TOKEN_VERSION}.{payload}".encode("ascii"), hashlib.sha256).digest())

    def issue(self, patient: str, issued_at: int, expires_at: int) -> str:
        payload = _b64(orjson.dumps({"p": checksum(patient), "iat": issued_at, "exp": expires_at}))
        return f"{TOKEN_VERSION}.{payload}.{self._mac(payload)}"

    def verify(self, token: str, now: int) -> str:
        """The patient a valid, unexpired token was issued to; AuthenticationError otherwise."""
        if not token.isascii():  # tokens are base64url: a byte beyond ASCII is no token of ours
            raise AuthenticationError("invalid patient session token; sign in again")
        version, _, rest = token.partition(".")
        payload, _, mac = rest.partition(".")
        if version != TOKEN_VERSION or not payload or not hmac.compare_digest(mac, self._mac(payload)):
            raise AuthenticationError("invalid patient session token; sign in again")
        try:
            claims = orjson.loads(_unb64(payload))
        except (binascii.Error, ValueError) as err:  # cannot happen for a token we signed
            raise AuthenticationError("invalid patient session token; sign in again") from err
        if int(claims["exp"]) <= now:
            raise AuthenticationError("the patient session has expired; sign in again", expired_at=claims["exp"])
        return str(claims["p"])


@raises(StoreUnavailableError)
async def session_tokens(request: Request, service: ServiceDep) -> SessionTokens:
    """The app's token issuer (made on first use, on the event loop, so only once)."""
    tokens: SessionTokens | None = getattr(request.app.state, "patient_tokens", None)
    if tokens is None:
        tokens = SessionTokens(shared_secret(service.ledger.shared_files))
        request.app.state.patient_tokens = tokens
    return tokens


TokensDep = Annotated[SessionTokens, Depends(session_tokens)]


@raises(AuthenticationError, PermissionDeniedError)
def signed_in_patient(
    patient: PatientPath,
    tokens: TokensDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_patient_bearer)],
) -> str:
    """The patient in the path, if the caller holds a session token for exactly that patient."""
    if bearer is None:
        raise AuthenticationError("sign in first: a patient session token is required (Authorization: Bearer)")
    holder = tokens.verify(bearer.credentials, int(time.time()))
    if holder != patient:
        raise PermissionDeniedError("this session belongs to another patient", patient=patient)
    return holder


SignedInPatient = Annotated[str, Depends(signed_in_patient)]


@dataclass(frozen=True)
class PatientOrApp:
    """Who calls an endpoint open to both: a patient's own session, or an organisation's app."""

    patient: str | None = None
    caller: Caller | None = None


@raises(AuthenticationError, StoreUnavailableError)
async def patient_or_app(
    service: ServiceDep,
    tokens: TokensDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_credentials)],
) -> PatientOrApp:
    """A patient session token (``v1.``...) names the patient; anything else authenticates as the
    ``/v1`` routes do (:func:`api.deps.authenticate`: an app's API key)."""
    if credentials is not None and credentials.credentials.startswith(f"{TOKEN_VERSION}."):
        return PatientOrApp(patient=tokens.verify(credentials.credentials, int(time.time())))
    return PatientOrApp(caller=await authenticate(service, credentials, None))


PatientOrAppDep = Annotated[PatientOrApp, Depends(patient_or_app)]
