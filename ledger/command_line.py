"""Conventions both command-line programs (``careledger``, ``careledger-audit``) keep.

* Machine output alone goes to stdout: with ``--output json``, one JSON document (ASCII, so no
  control or bidirectional character reaches a terminal even raw). Everything meant for people
  (tables, verdicts, progress, "could not check") goes to stderr, so a pipe never gets it mixed in.
* Text that comes from outside (member names, paths, reasons read from the chain or an archive) is
  escaped before it reaches a terminal: :func:`escape_text` turns every character that is not
  printable (escape sequences, carriage returns, bidirectional overrides...) into its Python-style
  escape, and :func:`shown` also escapes Rich markup, so a name can neither move the cursor nor paint
  a fake verdict.
* ``--version`` prints the installed package's version (its metadata, the one place it is stated).
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape as escape_markup

PACKAGE = "careledger"

human = Console(stderr=True, highlight=False)
"""Where text for people goes: stderr."""


class OutputFormat(StrEnum):
    """What a command prints on stdout: nothing (``text``: all of it is for people, on stderr) or
    its result as one JSON document (``json``)."""

    TEXT = "text"
    JSON = "json"


Output = Annotated[
    OutputFormat,
    typer.Option(
        "--output",
        case_sensitive=False,
        help="text: for people, on stderr; json: the result as one JSON document on stdout.",
    ),
]


def emit_json(document: Any) -> None:
    """Write ``document`` to stdout as JSON (ASCII-only: every other character escaped)."""
    sys.stdout.write(json.dumps(document, indent=1, ensure_ascii=True) + "\n")
    sys.stdout.flush()


def escape_text(text: str) -> str:
    """``text`` with every non-printable character (and the backslash) as its escape: ``\\x1b``,
    ``\\u202e``; printable text, spaces included, is unchanged."""
    if text.isprintable() and "\\" not in text:
        return text
    return "".join(_escape_char(char) for char in text)


def _escape_char(char: str) -> str:
    if char == "\\":
        return "\\\\"
    if char.isprintable():
        return char
    point = ord(char)
    if point < 0x100:
        return f"\\x{point:02x}"
    return f"\\u{point:04x}" if point < 0x10000 else f"\\U{point:08x}"


def shown(value: object) -> str:
    """``value`` as text safe to hand to Rich: escaped (:func:`escape_text`), markup included."""
    return escape_markup(escape_text(str(value)))


_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def byte_count(text: str) -> int:
    """A size given on the command line: digits, optionally with ``K``, ``M``, ``G`` or ``T``
    (powers of 1024; ``KiB``, ``MB`` and the like read the same), at least 1.

    Raises:
        typer.BadParameter: Anything else.
    """
    value = str(text).strip().upper().removesuffix("B").removesuffix("I")
    unit = value[-1:] if value[-1:].isalpha() else ""
    number = value[: len(value) - len(unit)]
    if unit not in _UNITS or not (number.isascii() and number.isdigit()) or int(number) < 1:
        raise typer.BadParameter(f"expected a byte count such as 65536, 64K, 64M or 4G, not {text!r}")
    return int(number) * _UNITS[unit]


def installed_version() -> str:
    """The installed package's version, from its metadata."""
    try:
        return version(PACKAGE)
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def version_option(program: str) -> Any:
    """A ``--version`` option for a Typer app's callback, printing ``PROGRAM VERSION`` and exiting."""

    def show_version(value: bool) -> None:
        if value:
            sys.stdout.write(f"{program} {installed_version()}\n")
            raise typer.Exit(0)

    return typer.Option("--version", callback=show_version, is_eager=True, help="Print the installed version and exit.")


__all__ = [
    "Output",
    "OutputFormat",
    "byte_count",
    "emit_json",
    "escape_text",
    "human",
    "installed_version",
    "shown",
    "version_option",
]
