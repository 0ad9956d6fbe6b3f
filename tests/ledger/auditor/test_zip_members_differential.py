""":class:`ZipMembers` against ``zipfile``, differentially: random members and names, written stored
or deflated, then randomly damaged (bytes changed, the archive cut short, sizes rewritten). Wherever
``zipfile`` reads a member, ``ZipMembers`` gives the same bytes; wherever ``zipfile`` refuses one
(or the whole archive), so does ``ZipMembers``. Each member is read both ways ``ZipMembers`` has:
cut from a span read (:meth:`ZipMembers.load`) and one by one through ``zipfile``'s bounded reads.

Derandomized, with pinned examples for the cases that once differed; bounded to a few seconds.
"""

from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ledger.auditor.zip_members import ZipMembers

REFUSED = "refused"
names = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00/"), min_size=1, max_size=12)
contents = st.one_of(
    st.binary(max_size=600), st.builds(lambda n, b: bytes([b]) * n, st.integers(0, 5000), st.integers(0, 255))
)
damage = st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(1, 255)), max_size=3)
"""Byte positions (taken modulo the archive's length) and the values XORed into them."""


def _archive(members: dict[str, bytes], deflated: bool) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED if deflated else zipfile.ZIP_STORED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


def _damaged(raw: bytes, flips: list[tuple[int, int]], cut: int | None) -> bytes:
    data = bytearray(raw)
    for position, value in flips:
        data[position % len(data)] ^= value
    return bytes(data[: cut % (len(data) + 1)] if cut is not None else data)


def _zipfile_reads(path: Path) -> dict[str, bytes | str] | None:
    try:
        archive = zipfile.ZipFile(path)
    except Exception:
        return None
    with archive:
        reads: dict[str, bytes | str] = {}
        for name in archive.NameToInfo:
            try:
                reads[name] = archive.read(name)
            except Exception:
                reads[name] = REFUSED
        return reads


def _our_reads(path: Path, order: list[str], spans: bool) -> dict[str, bytes | str] | None:
    try:
        members = ZipMembers(str(path))
    except Exception:
        return None
    try:
        if spans:
            members.load(order)
        reads: dict[str, bytes | str] = {}
        for name in order:
            try:
                reads[name] = members.read(name)
            except (OSError, KeyError):
                reads[name] = REFUSED
        return reads
    finally:
        members.close()


def _compare(raw: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "a.zip"
        path.write_bytes(raw)
        expected = _zipfile_reads(path)
        order = sorted(expected) if expected is not None else []
        for spans in (True, False):
            assert _our_reads(path, order, spans) == expected, f"spans={spans}"


@settings(
    max_examples=150,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    members=st.dictionaries(names, contents, min_size=1, max_size=5),
    deflated=st.booleans(),
    flips=damage,
    cut=st.none() | st.integers(0, 1 << 20),
)
@example(members={"a.receipt.json": b"{}" * 100}, deflated=True, flips=[], cut=None)  # undamaged
@example(members={"a": b"x" * 1000, "b": b"y"}, deflated=True, flips=[(40, 7)], cut=None)  # deflate stream damaged
@example(members={"a": b"x" * 1000}, deflated=False, flips=[(35, 1)], cut=None)  # stored content changed
@example(members={"a": b"x" * 1000, "b": b"y" * 10}, deflated=True, flips=[], cut=60)  # cut inside a member
@example(members={"\u00e9": b"1"}, deflated=False, flips=[(7, 8)], cut=None)  # UTF-8 flag cleared in the local header
def test_zip_members_read_what_zipfile_reads(
    members: dict[str, bytes], deflated: bool, flips: list[tuple[int, int]], cut: int | None
) -> None:
    _compare(_damaged(_archive(members, deflated), flips, cut))


def _set_sizes(raw: bytes, declared: int) -> bytes:
    """Every local header and directory entry claiming ``declared`` bytes uncompressed."""
    data = bytearray(raw)
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = data.find(signature)
        while at >= 0:
            data[at + offset : at + offset + 4] = declared.to_bytes(4, "little")
            at = data.find(signature, at + 4)
    return bytes(data)


@settings(max_examples=60, derandomize=True, deadline=None, database=None)
@given(content=contents, deflated=st.booleans(), declared=st.integers(0, 7000))
@example(content=b"\x00" * 5000, deflated=True, declared=10)  # inflates past what it declares
@example(content=b"", deflated=True, declared=0)
@example(content=b"abc", deflated=False, declared=5000)
def test_declared_sizes_that_lie_are_judged_as_zipfile_judges_them(
    content: bytes, deflated: bool, declared: int
) -> None:
    _compare(_set_sizes(_archive({"m.bin": content}, deflated), declared))
