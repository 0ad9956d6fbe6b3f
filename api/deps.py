"""Dependencies shared by the routes: the service, and who is calling with which roles."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from api.openapi import raises
from api.service import Service
from ledger.exceptions import AuthenticationError, PermissionDeniedError, StoreUnavailableError
from ledger.store.apps import App, Organisation, Role

_bearer = HTTPBearer(auto_error=False, description="An app's API key: `Authorization: Bearer clk_...`")
_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="Alternatively, the API key here.")


async def get_service(request: Request) -> Service:
    # dependencies are async so that FastAPI does not send each one to the thread pool
    service: Service = request.app.state.service
    return service


ServiceDep = Annotated[Service, Depends(get_service)]


@dataclass(frozen=True)
class Caller:
    """An authenticated app and the organisation it acts for."""

    app: App
    organisation: Organisation

    def require(self, *roles: Role) -> None:
        if not self.app.roles.intersection(roles):
            raise PermissionDeniedError(
                f"this endpoint needs the role {' or '.join(r.value for r in roles)}",
                needed=[r.value for r in roles],
                roles=sorted(r.value for r in self.app.roles),
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
        raise AuthenticationError("an API key is required (Authorization: Bearer <key>)")
    app = service.app_keys.lookup(service.db.conn, key)
    if app is None:
        raise AuthenticationError("unknown or revoked API key")
    return Caller(app, service.organisation(app.organisation_id))


def requires(*roles: Role) -> Callable[[Caller], Coroutine[Any, Any, Caller]]:
    """A dependency that authenticates and checks that the app holds one of ``roles``."""

    @raises(PermissionDeniedError)
    async def dependency(caller: Annotated[Caller, Depends(authenticate)]) -> Caller:
        caller.require(*roles)
        return caller

    return dependency


Registrar = Annotated[Caller, Depends(requires(Role.REGISTRAR))]
Reader = Annotated[Caller, Depends(requires(Role.READER, Role.REGISTRAR))]
Admin = Annotated[Caller, Depends(requires(Role.ADMIN))]
RelayingApp = Annotated[Caller, Depends(requires(Role.RELAYER))]
AnyCaller = Annotated[Caller, Depends(authenticate)]
