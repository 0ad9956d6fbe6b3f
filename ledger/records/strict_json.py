"""The one strict JSON parser: what a record document's digest is computed from, in the API and the auditor alike.

A digest is the SHA-256 of a document's RFC 8785 (JCS) canonical form, and JCS reads every number as
an IEEE double. A lax parser would hand two different texts the same digest, so this one refuses,
instead of silently picking a meaning:

* a key repeated within an object (parsers disagree on which one wins);
* a number the double cannot hold exactly: its decimal value must equal the double's exact value
  or the double's shortest spelling (the one JCS writes, so canonical forms parse back). So
  ``9007199254740993`` (rounds to ``...992``) and ``0.10000000000000000001`` (rounds to ``0.1``)
  are refused, while ``1.0``, ``1e2``, ``9007199254740992`` and ``1152921504606847000`` (2**60 as
  JCS writes it) are accepted;
* ``NaN``, ``Infinity``, text that is not UTF-8, and escapes that leave an unpaired surrogate.

Documents are also bounded before they are parsed, without recursing: nesting deeper than
``max_depth`` (py_ecc, imported with web3, raises Python's recursion limit to 100,000, and the
standard library's parser then overflows the C stack instead of failing), and, when asked, more than
``max_elements`` values. :func:`check_value` bounds an already parsed value the same way.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from decimal import Decimal
from itertools import accumulate
from typing import Any, Final, NoReturn

from ledger.exceptions import (
    DuplicateKeyError,
    InexactNumberError,
    InvalidDocumentError,
    InvalidJsonError,
    NestingTooDeepError,
    TooManyElementsError,
)

MAX_JSON_DEPTH: Final = 512
"""Deepest nesting of arrays and objects accepted by default."""

EXACT_INTEGER_BOUND: Final = 2**53
"""Every integer of at most this magnitude is held exactly by a double (beyond it, only some are)."""
_MAX_SAFE_INTEGER: Final = EXACT_INTEGER_BOUND - 1
_JSON_STRING: Final = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET: Final = re.compile(r"[^\[\]{}]+")
_SURROGATE_ESCAPE: Final = re.compile(r"\\u[dD][89a-fA-F]")
_BRACKET_STEP: Final = {"[": 1, "{": 1, "]": -1, "}": -1}


def parse_json(
    text: str | bytes | bytearray | memoryview,
    *,
    max_depth: int = MAX_JSON_DEPTH,
    max_elements: int | None = None,
    field: str | None = None,
) -> Any:
    """Parse JSON text strictly (see the module's docstring).

    Args:
        text: The JSON text; bytes must be UTF-8.
        max_depth: Deepest nesting of arrays and objects accepted.
        max_elements: Most values accepted (every array element and member value, and the top
            value); None for no bound.
        field: Named in the errors' details (``"document"``, ``"body"``).

    Raises:
        InvalidJsonError: Not UTF-8, not JSON, or ``NaN``/``Infinity``.
        DuplicateKeyError: A key repeated within an object.
        InexactNumberError: A number a double does not hold exactly.
        NestingTooDeepError: Nesting deeper than ``max_depth``.
        TooManyElementsError: More than ``max_elements`` values.
        InvalidDocumentError: An escape leaves an unpaired surrogate.
    """
    where = {"field": field} if field else {}
    if not isinstance(text, str):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as err:
            raise InvalidJsonError(f"document is not UTF-8: {err}", **where) from err
    _check_text_bounds(text, max_depth, max_elements, where)
    try:
        value = json.loads(
            text,
            object_pairs_hook=_reject_duplicate_keys,
            parse_constant=_reject_constant,
            parse_int=_parse_int,
            parse_float=_parse_float,
        )
    except json.JSONDecodeError as err:
        raise InvalidJsonError(f"document is not valid JSON: {err}", **where) from err
    except RecursionError as err:  # unreachable after the depth check; kept as a guard
        raise NestingTooDeepError("document is nested too deeply to parse", max_depth=max_depth, **where) from err
    except InvalidDocumentError as err:
        err.details.update(where)
        raise
    if _SURROGATE_ESCAPE.search(text) is not None:
        _check_surrogates(value, where)
    return value


def check_value(
    value: object, *, max_depth: int = MAX_JSON_DEPTH, max_elements: int | None = None, field: str | None = None
) -> None:
    """Refuse a parsed value nested deeper than ``max_depth`` (or cyclic), or with more than
    ``max_elements`` values, iteratively (never recursing).

    Raises:
        NestingTooDeepError, TooManyElementsError: As :func:`parse_json`.
    """
    where = {"field": field} if field else {}
    stack: list[tuple[object, int]] = [(value, 1)]
    count = 1
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Iterable[object] = node.values()
        elif isinstance(node, (list, tuple)):
            children = node
        else:
            continue
        if depth > max_depth:
            raise NestingTooDeepError(f"nests deeper than {max_depth} levels", max_depth=max_depth, **where)
        size = len(node)
        count += size
        if max_elements is not None and count > max_elements:
            raise TooManyElementsError(f"has more than {max_elements} values", max_elements=max_elements, **where)
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list, tuple)))


def _check_text_bounds(text: str, max_depth: int, max_elements: int | None, where: dict[str, str]) -> None:
    """Refuse text nested deeper than ``max_depth`` or with more than ``max_elements`` values.

    Values are counted as one plus the commas plus the arrays and objects (an upper bound that
    is exact but for empty containers). Counting the raw text's characters settles most
    documents at once; otherwise strings are cut out first (brackets and commas inside them do
    not count). The regexes, ``count`` and ``accumulate`` run in C.
    """
    opens = text.count("[") + text.count("{")
    deep_possible = opens > max_depth
    many_possible = max_elements is not None and 1 + opens + text.count(",") > max_elements
    if not deep_possible and not many_possible:
        return
    outside_strings = _JSON_STRING.sub("", text)
    if deep_possible:
        brackets = _NOT_BRACKET.sub("", outside_strings)
        depth = max(accumulate(map(_BRACKET_STEP.__getitem__, brackets)), default=0)
        if depth > max_depth:
            raise NestingTooDeepError(f"document nests deeper than {max_depth} levels", max_depth=max_depth, **where)
    if many_possible:
        assert max_elements is not None
        values = 1 + outside_strings.count(",") + outside_strings.count("[") + outside_strings.count("{")
        if values > max_elements:
            raise TooManyElementsError(
                f"document has more than {max_elements} values", max_elements=max_elements, **where
            )


def _check_surrogates(value: object, where: dict[str, str]) -> None:
    """Refuse strings (keys too) holding an unpaired surrogate (paired escapes decode to one character)."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            strings: Iterable[str] = (node,)
        elif isinstance(node, dict):
            strings = node.keys()
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
            continue
        else:
            continue
        for string in strings:
            try:
                string.encode("utf-8")
            except UnicodeEncodeError as err:
                raise InvalidDocumentError("document has an unpaired surrogate escape", **where) from err


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Build a JSON object, refusing repeated keys."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKeyError(f"duplicate key in JSON object: {key!r}", key=key)
            seen.add(key)
    return obj


def _holds_exactly(literal: str, double: float) -> bool:
    """Whether the literal's decimal value is the double's exact value or its shortest spelling."""
    if math.isinf(double):
        return False
    exact = Decimal(literal)
    return exact == Decimal(double) or exact == Decimal(repr(double))


def _parse_int(literal: str) -> int | float:
    """An integer literal: an ``int`` up to ``2**53 - 1``, beyond it a ``float`` if held exactly."""
    try:
        value = int(literal)
    except ValueError as err:  # beyond Python's int-from-string digit limit
        raise InexactNumberError("integer literal is too long", length=len(literal)) from err
    if -_MAX_SAFE_INTEGER <= value <= _MAX_SAFE_INTEGER:
        return value
    double = float(value) if value.bit_length() <= 1024 else math.inf
    if _holds_exactly(literal, double):
        return double
    raise InexactNumberError(f"integer {literal[:40]} cannot be held exactly by a JSON number", literal=literal[:40])


def _parse_float(literal: str) -> float:
    """A number literal with a fraction or exponent, if a double holds it exactly."""
    double = float(literal)
    if repr(double) == literal or _holds_exactly(literal, double):
        return double
    raise InexactNumberError(f"number {literal[:40]} cannot be held exactly by a JSON number", literal=literal[:40])


def _reject_constant(name: str) -> NoReturn:
    """Refuse the non-standard literals ``NaN``, ``Infinity`` and ``-Infinity``."""
    raise InvalidJsonError(f"non-finite number {name} is not valid JSON", literal=name)


__all__ = ["MAX_JSON_DEPTH", "check_value", "parse_json"]
