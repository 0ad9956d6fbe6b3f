"""What both command lines share: text from outside escaped for terminals, sizes read, versions."""

from __future__ import annotations

from importlib.metadata import version

import pytest
import typer
from rich.console import Console

from ledger.command_line import byte_count, escape_text, installed_version, shown


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("plain name.receipt.json", "plain name.receipt.json"),
        ("é 医 📄", "é 医 📄"),
        ("\x1b[2J", "\\x1b[2J"),
        ("a\rb\nc\td\x00", "a\\x0db\\x0ac\\x09d\\x00"),
        ("\x7f\x9b", "\\x7f\\x9b"),
        ("evil\u202etxt.exe", "evil\\u202etxt.exe"),
        ("\u200b\u2028\u00a0", "\\u200b\\u2028\\xa0"),
        ("\udcff", "\\udcff"),
        ("back\\x1b", "back\\\\x1b"),
        ("\U000e0041", "\\U000e0041"),
    ],
)
def test_escape_text_leaves_only_printable_characters(raw: str, escaped: str) -> None:
    assert escape_text(raw) == escaped
    assert escape_text(raw).isprintable()


def test_shown_text_is_printed_literally_by_rich() -> None:
    console = Console(record=True, width=200, force_terminal=False)
    console.print(shown("[bold green]VALID[/bold green] \x1b[31m"))
    assert console.export_text().strip() == "[bold green]VALID[/bold green] \\x1b[31m"


@pytest.mark.parametrize(
    ("text", "value"), [("1", 1), ("65536", 65536), ("64K", 65536), ("64KiB", 65536), ("2m", 2 << 20), ("1G", 1 << 30)]
)
def test_byte_counts(text: str, value: int) -> None:
    assert byte_count(text) == value


@pytest.mark.parametrize("text", ["", "0", "-1", "1.5G", "K", "lots", "1P"])
def test_byte_counts_refused(text: str) -> None:
    with pytest.raises(typer.BadParameter):
        byte_count(text)


def test_the_version_is_the_installed_packages() -> None:
    assert installed_version() == version("careledger")
