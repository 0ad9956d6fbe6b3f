"""Dependencies shared by the routes: the service, and who is calling with which roles.

A caller authenticates with an app's API key (``clk_...``) or with a SMART Backend Services access
token (``clt_...``, :mod:`ledger.oauth`), both as ``Authorization: Bearer``. With a key the request
may use all the app's roles; with a token only the roles its scopes stand for, and an endpoint
needing another is refused with 403 ``insufficient_scope``.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from api.declared_errors import raises
from api.service import Service
from ledger.exceptions import (
    AuthenticationError,
    InsufficientScopeError,
    PermissionDeniedError,
    StoreUnavailableError,
)
from ledger.oauth.access_tokens import is_access_token
from ledger.oauth.scopes import scopes_for
from ledger.store.apps import App, Organisation, Role

_bearer = HTTPBearer(
    auto_error=False,
    description="An app's API key (`Authorization: Bearer clk_...`) or a SMART Backend Services access token "
    "from `POST /oauth/token` (`Bearer clt_...`)",
)
_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="Alternatively, the API key here.")


async def get_service(request: Request) -> Service:
    # dependencies are async so that FastAPI does not send each one to the thread pool
    service: Service = request.app.state.service
    return service


ServiceDep = Annotated[Service, Depends(get_service)]


@dataclass(frozen=True)
class Caller:
    """An authenticated app, the organisation it acts for, and the roles this request may use: all
    the app's with its API key; with an access token (``scopes`` set) those its scopes stand for."""

    app: App
    organisation: Organisation
    roles: frozenset[Role]
    scopes: tuple[str, ...] | None = None

    def require(self, *roles: Role) -> None:
        if self.roles.intersection(roles):
            return
        needed = [r.value for r in roles]
        if self.scopes is not None:
            enough = scopes_for(roles)
            raise InsufficientScopeError(
                f"this endpoint needs the scope {' or '.join(enough)}"
                if enough
                else f"this endpoint needs the role {' or '.join(needed)}, which no token carries: use an API key",
                needed=needed,
                scope=" ".join(enough),
                granted=list(self.scopes),
            )
        raise PermissionDeniedError(
            f"this endpoint needs the role {' or '.join(needed)}",
            needed=needed,
            roles=sorted(r.value for r in self.roles),
        )


async def bearer_credentials(
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key_header)],
) -> HTTPAuthorizationCredentials | None:
    """The API key, if the caller sent one (for routes that answer anyone, and more to some)."""
    if bearer is not None:
        return bearer
    return HTTPAuthorizationCredentials(scheme="Bearer", credentials=api_key) if api_key else None


@raises(AuthenticationError, StoreUnavailableError)
async def authenticate(
    service: ServiceDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key_header)],
) -> Caller:
    key = bearer.credentials if bearer is not None else api_key
    if not key:
        raise AuthenticationError("an API key or access token is required (Authorization: Bearer <key>)")
    if is_access_token(key):
        token = service.access_tokens.lookup(service.db.conn, key)
        return Caller(token.app, service.organisation(token.app.organisation_id), token.roles, token.scopes)
    app = service.app_keys.lookup(service.db.conn, key)
    if app is None:
        raise AuthenticationError("unknown or revoked API key")
    return Caller(app, service.organisation(app.organisation_id), app.roles)


def requires(*roles: Role) -> Callable[[Caller], Coroutine[Any, Any, Caller]]:
    """A dependency that authenticates and checks that the app holds one of ``roles``."""

    @raises(PermissionDeniedError, InsufficientScopeError)
    async def dependency(caller: Annotated[Caller, Depends(authenticate)]) -> Caller:
        caller.require(*roles)
        return caller

    return dependency


Registrar = Annotated[Caller, Depends(requires(Role.REGISTRAR))]
Reader = Annotated[Caller, Depends(requires(Role.READER, Role.REGISTRAR))]
Admin = Annotated[Caller, Depends(requires(Role.ADMIN))]
RelayingApp = Annotated[Caller, Depends(requires(Role.RELAYER))]
AnyCaller = Annotated[Caller, Depends(authenticate)]
