"""SMART Backend Services: the configuration document and the token endpoint (:mod:`ledger.oauth`).

Both are public: a client authenticates at the token endpoint with its signed assertion, not with
an API key. Token requests are rate-limited per client address.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from api.declared_errors import raises
from api.deps import ServiceDep
from api.errors import NO_STORE
from api.limits import LedgerRoute
from api.rate_limit import RateLimiter, app_limits, client_address
from api.schemas.smart import TOKEN_ERRORS, TOKEN_REQUEST_BODY, SmartConfigurationOut, TokenOut
from api.service import Service
from ledger.exceptions import RateLimitedError, StorageFullError, StoreUnavailableError
from ledger.oauth.discovery import (
    SMART_CONFIGURATION_PATH,
    TOKEN_ENDPOINT_PATH,
    smart_configuration,
    token_endpoint_url,
)
from ledger.oauth.token_endpoint import IssuedToken, TokenRequest, issue_token, parse_token_request

FHIR_BASE = "/fhir/r4"
"""SMART clients look for the configuration relative to the FHIR base too."""

router = APIRouter(tags=["smart"], route_class=LedgerRoute)


@router.get(SMART_CONFIGURATION_PATH, response_model=SmartConfigurationOut, summary="SMART configuration")
@router.get(FHIR_BASE + SMART_CONFIGURATION_PATH, response_model=SmartConfigurationOut, include_in_schema=False)
def configuration(service: ServiceDep) -> dict[str, Any]:
    """What a SMART Backend Services client needs: the token endpoint, how to authenticate there,
    and the scopes offered (each stands for one of the ledger's roles)."""
    return smart_configuration(service.settings.origin)


async def token_request_limit(request: Request, service: ServiceDep) -> RateLimiter:
    """The app's per-client budget of token requests (``token_requests_per_minute``; tests may set
    ``app.state.token_limit``)."""
    return app_limits(
        request, "token_limit", lambda: RateLimiter(service.settings.token_requests_per_minute, 60.0, "client")
    )


@raises(RateLimitedError)
def _client_limited(request: Request, limiter: Annotated[RateLimiter, Depends(token_request_limit)]) -> None:
    limiter.take(client_address(request))


@router.post(
    TOKEN_ENDPOINT_PATH,
    response_model=TokenOut,
    summary="Get an access token (client_credentials with a private_key_jwt assertion)",
    dependencies=[Depends(_client_limited)],
    responses=TOKEN_ERRORS,
    openapi_extra=TOKEN_REQUEST_BODY,
)
@raises(StoreUnavailableError, StorageFullError)  # refusals of the request itself: TOKEN_ERRORS (OAuth's shape)
async def token(request: Request, service: ServiceDep) -> Response:
    """Use the token as `Authorization: Bearer <access_token>` until it expires, then get another
    with a new assertion (there are no refresh tokens)."""
    parsed = parse_token_request(await request.body(), request.headers.get("content-type"))
    issued = await run_in_threadpool(_issue, service, parsed)
    body = {
        "access_token": issued.access_token,
        "token_type": issued.token_type,
        "expires_in": issued.expires_in,
        "scope": issued.scope,
    }
    return Response(orjson.dumps(body), media_type="application/json", headers=NO_STORE)


def _issue(service: Service, parsed: TokenRequest) -> IssuedToken:
    """Issue the token on this thread's store connection."""
    settings = service.settings
    return issue_token(
        service.db.conn,
        parsed,
        token_endpoint=token_endpoint_url(settings.origin),
        lifetime=settings.access_token_lifetime,
        now=int(time.time()),
    )
