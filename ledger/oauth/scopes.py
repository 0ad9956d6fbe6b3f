"""SMART ``system/*`` scopes and the roles they stand for.

An access token carries SMART v2 scopes; each scope offered stands for exactly one role, and a
request made with the token may use the roles of its scopes, no others:

=====================  ===========  ==========================================================
scope                  role         what it allows
=====================  ===========  ==========================================================
``system/*.rs``        reader       read and search: records, receipts, lookups, consents,
                                    access requests, the audit trail
``system/*.cruds``     registrar    all a registrar does: register (c), read back (r, s),
                                    amend (u) and retract (d) records
``system/Consent.cu``  relayer      relay patients' signed consent grants (c) and changes (u)
=====================  ===========  ==========================================================

Decisions:

* Granting is an intersection: the token gets the requested scopes that the app's roles allow,
  compared as whole scope strings. ``system/*.rs`` is allowed to readers and to registrars (reading
  is part of what a registrar may do, and a registrar's backend may want a token that can only
  read). Requested scopes outside the table (another resource type, SMART v1's ``system/*.read``,
  ``patient/`` and ``user/`` scopes, ``launch``, ``openid``) are left out, not refused: RFC 6749
  section 3.3 lets a server grant less than asked, and the answer's ``scope`` says what was granted.
  A request of which nothing can be granted is refused (``invalid_scope``).
* A token acts with the roles of its scopes only, never with all its app's roles: a ``system/*.rs``
  token of an app that also registers cannot register. Such a request is "scope too narrow": 403
  ``insufficient_scope``, naming the scopes that would do (:func:`scopes_for`).
* ``admin`` and ``emergency`` have no scope: administering the ledger and break-glass access keep
  to API keys (no SMART scope means either, and break-glass is a clinician's decision, taken once,
  not a standing grant to a backend).
* Scopes by FHIR resource type (``system/Observation.rs``) are not offered: a record is a digest
  whose document, if sent at all, may be of any type, so the ledger could not hold a token to one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ledger.exceptions import InvalidScopeError
from ledger.store.apps import Role

READ_SCOPE = "system/*.rs"
REGISTRAR_SCOPE = "system/*.cruds"
RELAY_SCOPE = "system/Consent.cu"

ROLE_OF_SCOPE: dict[str, Role] = {
    READ_SCOPE: Role.READER,
    REGISTRAR_SCOPE: Role.REGISTRAR,
    RELAY_SCOPE: Role.RELAYER,
}
"""The one table: what each offered scope stands for. Its order is the order scopes are listed in."""
SUPPORTED_SCOPES: tuple[str, ...] = tuple(ROLE_OF_SCOPE)
GRANTED_TO: dict[str, frozenset[Role]] = {
    READ_SCOPE: frozenset({Role.READER, Role.REGISTRAR}),
    REGISTRAR_SCOPE: frozenset({Role.REGISTRAR}),
    RELAY_SCOPE: frozenset({Role.RELAYER}),
}
"""Which app roles allow a scope (an app holding any of them may be granted it)."""

MAX_SCOPES = 32
_SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")
"""RFC 6749 section 3.3: a scope token is printable ASCII but space, ``"`` and ``\\``."""


def parse_scope(text: str) -> tuple[str, ...]:
    """The scope tokens of a ``scope`` parameter (space-separated), each once, in the order given."""
    tokens = [token for token in text.split(" ") if token]
    if not tokens:
        raise InvalidScopeError("no scope was requested: ask for one of " + " ".join(SUPPORTED_SCOPES))
    if len(tokens) > MAX_SCOPES:
        raise InvalidScopeError(f"more than {MAX_SCOPES} scopes were requested")
    if not all(_SCOPE_TOKEN.match(token) for token in tokens):
        raise InvalidScopeError("the scope parameter holds characters a scope may not have")
    return tuple(dict.fromkeys(tokens))


def allowed_scopes(roles: Iterable[Role]) -> tuple[str, ...]:
    """The scopes an app holding ``roles`` may be granted, in table order."""
    held = frozenset(roles)
    return tuple(scope for scope in SUPPORTED_SCOPES if GRANTED_TO[scope] & held)


def grant(requested: Iterable[str], roles: Iterable[Role]) -> tuple[str, ...]:
    """The requested scopes that an app with ``roles`` may have, in table order; none is
    :class:`InvalidScopeError`."""
    allowed = allowed_scopes(roles)
    asked = set(requested)
    granted = tuple(scope for scope in allowed if scope in asked)
    if not granted:
        raise InvalidScopeError(
            "none of the requested scopes can be granted to this client; it may ask for "
            + (" ".join(allowed) or "nothing (its app has no role a scope stands for)")
        )
    return granted


def roles_of(scopes: Iterable[str]) -> frozenset[Role]:
    """The roles a token with ``scopes`` acts with (scopes not in the table stand for none)."""
    return frozenset(ROLE_OF_SCOPE[scope] for scope in scopes if scope in ROLE_OF_SCOPE)


def scopes_for(roles: Iterable[Role]) -> tuple[str, ...]:
    """The scopes whose roles include one of ``roles`` (what an endpoint needing them needs)."""
    wanted = frozenset(roles)
    return tuple(scope for scope, role in ROLE_OF_SCOPE.items() if role in wanted)
