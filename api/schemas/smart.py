"""SMART Backend Services on the wire: the token request's form, the token, the configuration document.

These bodies follow OAuth 2.0 and SMART, not the rest of the API: snake_case names, and a refused
token request is ``{"error", "error_description"}`` (RFC 6749 section 5.2).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ledger.oauth.assertions import ASSERTION_TYPE
from ledger.oauth.scopes import SUPPORTED_SCOPES
from ledger.oauth.token_endpoint import FORM_TYPE, GRANT_TYPE, TOKEN_TYPE


class OAuthModel(BaseModel):
    """snake_case as OAuth and SMART spell it; what is sent is all there is (``additionalProperties: false``)."""

    model_config = ConfigDict(extra="forbid")


class TokenOut(OAuthModel):
    access_token: str = Field(description="an opaque bearer token (`clt_...`)")
    token_type: Literal["bearer"] = TOKEN_TYPE
    expires_in: int = Field(description="seconds the token lives")
    scope: str = Field(description="the granted scopes, space-separated", examples=[" ".join(SUPPORTED_SCOPES[:1])])


class OAuthErrorOut(OAuthModel):
    error: Literal["invalid_request", "invalid_client", "invalid_scope", "unsupported_grant_type"]
    error_description: str


class SmartConfigurationOut(OAuthModel):
    token_endpoint: str
    token_endpoint_auth_methods_supported: list[str]
    token_endpoint_auth_signing_alg_values_supported: list[str]
    grant_types_supported: list[str]
    scopes_supported: list[str]
    capabilities: list[str]


TOKEN_REQUEST_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            FORM_TYPE: {
                "schema": {
                    "type": "object",
                    "required": ["grant_type", "client_assertion_type", "client_assertion", "scope"],
                    "properties": {
                        "grant_type": {"type": "string", "enum": [GRANT_TYPE]},
                        "client_assertion_type": {"type": "string", "enum": [ASSERTION_TYPE]},
                        "client_assertion": {
                            "type": "string",
                            "description": "a JWT signed RS384 or ES384 with a registered key: iss = sub = "
                            "client_id, aud = the token endpoint, exp at most 5 minutes ahead, a fresh jti",
                        },
                        "scope": {"type": "string", "examples": [" ".join(SUPPORTED_SCOPES)]},
                        "client_id": {"type": "string", "description": "optional; the assertion's iss if given"},
                    },
                }
            }
        },
    }
}
"""The token request's form, for the OpenAPI document (the route reads the body itself)."""

TOKEN_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": OAuthErrorOut, "description": "invalid_request, invalid_scope or unsupported_grant_type"},
    401: {"model": OAuthErrorOut, "description": "invalid_client: the client or its assertion was not accepted"},
    429: {"description": "rate_limited: too many token requests from this client; see Retry-After"},
}
