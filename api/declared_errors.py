"""What each function raises on purpose, declared beside it: the OpenAPI document's source for every
operation's error statuses (:mod:`api.openapi` walks an operation's endpoint and dependencies).

Kept apart from the document and from the error table so that any module of the API (a dependency,
a schema's body reader, a route) can declare its errors without importing either.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from fastapi.dependencies.models import Dependant

F = TypeVar("F", bound=Callable[..., Any])
Raised = type[Exception] | str
"""An error family (a :class:`~ledger.exceptions.LedgerError` subclass, or FastAPI's
``RequestValidationError``), or the name of a contract's custom error (:data:`api.errors.REVERTS`)."""

_RAISED_BY: dict[Callable[..., Any], tuple[Raised, ...]] = {}


def raises(*errors: Raised) -> Callable[[F], F]:
    """Declare the error families a function (an endpoint or a dependency) raises on purpose; the
    document lists their statuses for every operation that calls it."""

    def mark(function: F) -> F:
        _RAISED_BY[function] = (*_RAISED_BY.get(function, ()), *errors)
        return function

    return mark


def _dependants(dependant: Dependant) -> Iterator[Dependant]:
    yield dependant
    for sub in dependant.dependencies:
        yield from _dependants(sub)


def raised_by(dependant: Dependant) -> list[Raised]:
    """What an endpoint and every dependency it runs declare they raise."""
    return [error for d in _dependants(dependant) if d.call is not None for error in _RAISED_BY.get(d.call, ())]
