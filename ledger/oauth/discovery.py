"""The SMART configuration document (``/.well-known/smart-configuration``) and the token endpoint's URL.

Both are built from the configured public origin (``public_origin``), never from a request's Host
header: the URL is also the audience every client assertion must name, and a Host a client chose
must not choose it. The document lists only what this server does: Backend Services
(``client-confidential-asymmetric``, the ``client_credentials`` grant, ``private_key_jwt`` with
RS384 or ES384) and the scopes of :mod:`ledger.oauth.scopes`. There is no authorization endpoint
(no user-facing launch), so no ``authorization_endpoint`` and no PKCE methods are listed.
"""

from __future__ import annotations

from typing import Any

from ledger.oauth.assertions import SIGNING_ALGORITHMS
from ledger.oauth.scopes import SUPPORTED_SCOPES
from ledger.oauth.token_endpoint import GRANT_TYPE

TOKEN_ENDPOINT_PATH = "/oauth/token"
SMART_CONFIGURATION_PATH = "/.well-known/smart-configuration"
AUTH_METHOD = "private_key_jwt"
CAPABILITIES = ("client-confidential-asymmetric",)


def token_endpoint_url(origin: str) -> str:
    """The token endpoint's URL for the service at ``origin`` (``https://ledger.example.org``)."""
    return origin.rstrip("/") + TOKEN_ENDPOINT_PATH


def smart_configuration(origin: str) -> dict[str, Any]:
    """The SMART configuration document of the service at ``origin``."""
    return {
        "token_endpoint": token_endpoint_url(origin),
        "token_endpoint_auth_methods_supported": [AUTH_METHOD],
        "token_endpoint_auth_signing_alg_values_supported": list(SIGNING_ALGORITHMS),
        "grant_types_supported": [GRANT_TYPE],
        "scopes_supported": list(SUPPORTED_SCOPES),
        "capabilities": list(CAPABILITIES),
    }
