"""Scopes stand for roles: granting is an intersection, a token acts with its scopes' roles only."""

from __future__ import annotations

import pytest

from ledger.exceptions import InvalidScopeError
from ledger.oauth.scopes import (
    READ_SCOPE,
    REGISTRAR_SCOPE,
    RELAY_SCOPE,
    SUPPORTED_SCOPES,
    allowed_scopes,
    grant,
    parse_scope,
    roles_of,
    scopes_for,
)
from ledger.store.apps import Role


@pytest.mark.parametrize(
    ("requested", "roles", "granted"),
    [
        ((READ_SCOPE,), {Role.READER}, (READ_SCOPE,)),
        ((REGISTRAR_SCOPE, READ_SCOPE), {Role.READER}, (READ_SCOPE,)),  # the part the app may have
        ((READ_SCOPE,), {Role.REGISTRAR}, (READ_SCOPE,)),  # a registrar may ask for less
        ((RELAY_SCOPE, REGISTRAR_SCOPE), {Role.REGISTRAR, Role.RELAYER}, (REGISTRAR_SCOPE, RELAY_SCOPE)),
        (
            (READ_SCOPE, "patient/*.rs", "system/Observation.rs", "system/*.read", "launch"),
            {Role.READER},
            (READ_SCOPE,),
        ),
    ],
)
def test_granted_scopes_are_the_requested_ones_the_app_may_have(
    requested: tuple[str, ...], roles: set[Role], granted: tuple[str, ...]
) -> None:
    assert grant(requested, roles) == granted


@pytest.mark.parametrize(
    ("requested", "roles"),
    [
        ((REGISTRAR_SCOPE,), {Role.READER}),
        (("system/*.read",), {Role.READER}),  # SMART v1 scopes are not offered
        ((READ_SCOPE,), {Role.ADMIN, Role.EMERGENCY}),  # no scope stands for either
        ((RELAY_SCOPE,), {Role.REGISTRAR}),
    ],
)
def test_nothing_grantable_is_invalid_scope(requested: tuple[str, ...], roles: set[Role]) -> None:
    with pytest.raises(InvalidScopeError, match="none of the requested scopes"):
        grant(requested, roles)


def test_the_scope_parameter_is_space_separated_tokens() -> None:
    assert parse_scope(f"{READ_SCOPE}  {REGISTRAR_SCOPE} {READ_SCOPE}") == (READ_SCOPE, REGISTRAR_SCOPE)
    for malformed in ("", "   ", 'system/*.rs "x"', "system/*.rs\\", "système/*.rs", " ".join(["a"] * 33)):
        with pytest.raises(InvalidScopeError):
            parse_scope(malformed)


def test_a_token_acts_with_the_roles_of_its_scopes_only() -> None:
    assert roles_of((READ_SCOPE,)) == {Role.READER}
    assert roles_of((REGISTRAR_SCOPE, RELAY_SCOPE)) == {Role.REGISTRAR, Role.RELAYER}
    assert roles_of(("system/*.read",)) == frozenset()
    assert scopes_for((Role.READER, Role.REGISTRAR)) == (READ_SCOPE, REGISTRAR_SCOPE)
    assert scopes_for((Role.ADMIN,)) == ()


def test_every_role_but_admin_and_emergency_has_one_scope() -> None:
    assert sorted(r.value for r in roles_of(SUPPORTED_SCOPES)) == ["reader", "registrar", "relayer"]
    assert allowed_scopes({Role.ADMIN, Role.EMERGENCY}) == ()
    assert allowed_scopes(set(Role)) == SUPPORTED_SCOPES
