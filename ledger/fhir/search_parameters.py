"""What every search of the facade reads the same way: ``_count`` (a page's size), a parameter given
once, and a reference to an account (``<Type>/<address>`` or the address alone)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Final

from ledger.exceptions import InputError
from ledger.values import checksum

DEFAULT_COUNT: Final = 50
MAX_COUNT: Final = 200
"""Most resources in one page of a search (``_count``)."""


def page_count(text: str | None) -> int:
    """``_count``: a whole number from 1 to :data:`MAX_COUNT` (:data:`DEFAULT_COUNT` when not given).

    Raises:
        InputError: Anything else (0, too many, not a number).
    """
    if text is None:
        return DEFAULT_COUNT
    if not (text.isascii() and text.isdigit() and len(text) <= len(str(MAX_COUNT))) or not 1 <= int(text) <= MAX_COUNT:
        raise InputError(f"_count is a whole number from 1 to {MAX_COUNT}", field="_count", limit=MAX_COUNT)
    return int(text)


def single_value(params: Mapping[str, Sequence[str]], name: str) -> str | None:
    """The one value of a search parameter, or None when it is not given.

    Raises:
        InputError: It is given more than once.
    """
    values = params.get(name, ())
    if len(values) > 1:
        raise InputError(f"search parameter {name} is given more than once", field=name)
    return values[0] if values else None


def reference_address(value: str, resource: str, parameter: str) -> str:
    """The checksummed address of ``<resource>/<address>`` or of a bare address.

    Raises:
        InputError: It is neither.
    """
    try:
        return checksum(value.removeprefix(f"{resource}/"))
    except InputError as err:
        raise InputError(f"{parameter} is {resource}/<address> or the address", field=parameter) from err


def refuse_unknown(params: Mapping[str, Sequence[str]], known: Collection[str]) -> None:
    """Refuse a search naming a parameter it does not know (refused, not ignored).

    Raises:
        InputError: ``params`` names a parameter not in ``known``.
    """
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise InputError(f"unsupported search parameters: {', '.join(unknown)}", field=unknown[0])
