"""Names shown to people (organisations, in the patient page's picker): one spelling each, and no
name that looks like another.

A name is stored NFKC-normalised (so fullwidth, ligature and mathematical letters become the plain
ones), and refused if it holds a format character (Unicode category Cf: zero-width spaces and
joiners, bidi embeddings, overrides and isolates, the word joiner, the BOM), which hides or reorders
text, or a control character. Two names are confusable when their skeletons are equal; a skeleton
(after UTS #39's) is the name NFKC-normalised, with each letter that looks like a Latin letter or
digit replaced by it (Cyrillic a by ``a``, Greek omicron by ``o``, ``0`` by ``o``, ``rn`` by
``m``), casefolded, with marks, spaces and other separators dropped; ``I``, ``l``, ``i``, ``1`` and
``|`` count as one letter.

The look-alike table is narrow on purpose, and documented here rather than taken from a library:
no package on PyPI computes UTS #39 skeletons without a native ICU build. It holds the Cyrillic,
Greek, Armenian and other letters that render like Latin ones in common fonts, and the
digit/letter pairs; NFKC already folds the compatibility forms (fullwidth, mathematical
alphanumerics, ligatures). A look-alike outside the table is still visible to the eye as another
script; a name mixing scripts could be refused too, but organisation names legitimately do.
"""

from __future__ import annotations

import functools
import re
import sys
import unicodedata
from collections.abc import Iterable, Iterator
from typing import Final

from ledger.exceptions import ConfusableNameError, InputError, InvalidNameError, InvalidTextError

_LOOK_ALIKES: Final[dict[str, str]] = {
    # Cyrillic
    "\u0430": "a",  # CYRILLIC SMALL LETTER A
    "\u0432": "b",  # CYRILLIC SMALL LETTER VE
    "\u0435": "e",  # CYRILLIC SMALL LETTER IE
    "\u0451": "e",  # CYRILLIC SMALL LETTER IO
    "\u04bb": "h",  # CYRILLIC SMALL LETTER SHHA
    "\u0456": "i",  # CYRILLIC SMALL LETTER BYELORUSSIAN-UKRAINIAN I
    "\u0457": "i",  # CYRILLIC SMALL LETTER YI
    "\u0458": "j",  # CYRILLIC SMALL LETTER JE
    "\u043a": "k",  # CYRILLIC SMALL LETTER KA
    "\u04cf": "l",  # CYRILLIC SMALL LETTER PALOCHKA
    "\u043c": "m",  # CYRILLIC SMALL LETTER EM
    "\u043d": "h",  # CYRILLIC SMALL LETTER EN
    "\u043e": "o",  # CYRILLIC SMALL LETTER O
    "\u0440": "p",  # CYRILLIC SMALL LETTER ER
    "\u051b": "q",  # CYRILLIC SMALL LETTER QA
    "\u0433": "r",  # CYRILLIC SMALL LETTER GHE
    "\u0455": "s",  # CYRILLIC SMALL LETTER DZE
    "\u0442": "t",  # CYRILLIC SMALL LETTER TE
    "\u0475": "v",  # CYRILLIC SMALL LETTER IZHITSA
    "\u051d": "w",  # CYRILLIC SMALL LETTER WE
    "\u0445": "x",  # CYRILLIC SMALL LETTER HA
    "\u0443": "y",  # CYRILLIC SMALL LETTER U
    "\u04af": "y",  # CYRILLIC SMALL LETTER STRAIGHT U
    "\u0501": "d",  # CYRILLIC SMALL LETTER KOMI DE
    "\u0261": "g",  # LATIN SMALL LETTER SCRIPT G
    "\u057d": "u",  # ARMENIAN SMALL LETTER SEH
    "\u0410": "a",  # CYRILLIC CAPITAL LETTER A
    "\u0412": "b",  # CYRILLIC CAPITAL LETTER VE
    "\u0421": "c",  # CYRILLIC CAPITAL LETTER ES
    "\u0441": "c",  # CYRILLIC SMALL LETTER ES
    "\u0415": "e",  # CYRILLIC CAPITAL LETTER IE
    "\u041d": "h",  # CYRILLIC CAPITAL LETTER EN
    "\u0406": "l",  # CYRILLIC CAPITAL LETTER BYELORUSSIAN-UKRAINIAN I
    "\u0408": "j",  # CYRILLIC CAPITAL LETTER JE
    "\u041a": "k",  # CYRILLIC CAPITAL LETTER KA
    "\u041c": "m",  # CYRILLIC CAPITAL LETTER EM
    "\u041e": "o",  # CYRILLIC CAPITAL LETTER O
    "\u0420": "p",  # CYRILLIC CAPITAL LETTER ER
    "\u0405": "s",  # CYRILLIC CAPITAL LETTER DZE
    "\u0422": "t",  # CYRILLIC CAPITAL LETTER TE
    "\u0425": "x",  # CYRILLIC CAPITAL LETTER HA
    "\u0423": "y",  # CYRILLIC CAPITAL LETTER U
    "\u04ae": "y",  # CYRILLIC CAPITAL LETTER STRAIGHT U
    "\u051c": "w",  # CYRILLIC CAPITAL LETTER WE
    "\u04c0": "l",  # CYRILLIC LETTER PALOCHKA
    "\u0500": "d",  # CYRILLIC CAPITAL LETTER KOMI DE
    "\u051a": "q",  # CYRILLIC CAPITAL LETTER QA
    # Greek
    "\u03b1": "a",  # GREEK SMALL LETTER ALPHA
    "\u03bf": "o",  # GREEK SMALL LETTER OMICRON
    "\u03c1": "p",  # GREEK SMALL LETTER RHO
    "\u03bd": "v",  # GREEK SMALL LETTER NU
    "\u03b9": "i",  # GREEK SMALL LETTER IOTA
    "\u03ba": "k",  # GREEK SMALL LETTER KAPPA
    "\u03c5": "u",  # GREEK SMALL LETTER UPSILON
    "\u03c7": "x",  # GREEK SMALL LETTER CHI
    "\u03f2": "c",  # GREEK LUNATE SIGMA SYMBOL
    "\u0391": "a",  # GREEK CAPITAL LETTER ALPHA
    "\u0392": "b",  # GREEK CAPITAL LETTER BETA
    "\u0395": "e",  # GREEK CAPITAL LETTER EPSILON
    "\u0396": "z",  # GREEK CAPITAL LETTER ZETA
    "\u0397": "h",  # GREEK CAPITAL LETTER ETA
    "\u0399": "l",  # GREEK CAPITAL LETTER IOTA
    "\u039a": "k",  # GREEK CAPITAL LETTER KAPPA
    "\u039c": "m",  # GREEK CAPITAL LETTER MU
    "\u039d": "n",  # GREEK CAPITAL LETTER NU
    "\u039f": "o",  # GREEK CAPITAL LETTER OMICRON
    "\u03a1": "p",  # GREEK CAPITAL LETTER RHO
    "\u03a4": "t",  # GREEK CAPITAL LETTER TAU
    "\u03a5": "y",  # GREEK CAPITAL LETTER UPSILON
    "\u03a7": "x",  # GREEK CAPITAL LETTER CHI
    "\u03f9": "c",  # GREEK CAPITAL LUNATE SIGMA SYMBOL
    "\u03f3": "j",  # GREEK LETTER YOT
    "\u050d": "g",  # CYRILLIC SMALL LETTER KOMI SJE
    # Armenian, Cherokee, Latin variants
    "\u0585": "o",  # ARMENIAN SMALL LETTER OH
    "\u0578": "n",  # ARMENIAN SMALL LETTER VO
    "\u0570": "h",  # ARMENIAN SMALL LETTER HO
    "\u0584": "p",  # ARMENIAN SMALL LETTER KEH
    "\u0581": "g",  # ARMENIAN SMALL LETTER CO
    "\u13aa": "a",  # CHEROKEE LETTER GO
    "\u13ac": "e",  # CHEROKEE LETTER GV
    "\u13bb": "h",  # CHEROKEE LETTER MI
    "\u13df": "c",  # CHEROKEE LETTER TLI
    "\u13da": "s",  # CHEROKEE LETTER DU
    "\u13a2": "t",  # CHEROKEE LETTER I
    "\u13b3": "w",  # CHEROKEE LETTER LA
    "\u0131": "i",  # LATIN SMALL LETTER DOTLESS I
    "\u0237": "j",  # LATIN SMALL LETTER DOTLESS J
    "\u01c0": "l",  # LATIN LETTER DENTAL CLICK
    "\u0251": "a",  # LATIN SMALL LETTER ALPHA
    "\u028f": "y",  # LATIN LETTER SMALL CAPITAL Y
    # digits and letters, Latin capitals that read as other small letters
    "0": "o",
    "1": "l",
    "|": "l",
    "5": "s",
    "8": "b",
}
_SEQUENCES: Final = (("rn", "m"), ("vv", "w"), ("cl", "d"))
"""Letter pairs that render as one letter (applied after casefolding, to the mapped text)."""
_SPACES: Final = re.compile(r"\s+")
_HIDDEN: Final = ("Cf", "Cc")
"""Unicode categories never allowed in a name: format (hides or reorders text) and control."""


def _ranges(code_points: Iterable[int]) -> Iterator[tuple[int, int]]:
    start = end = None
    for cp in code_points:
        if end is not None and cp == end + 1:
            end = cp
            continue
        if start is not None and end is not None:
            yield start, end
        start = end = cp
    if start is not None and end is not None:
        yield start, end


def _character_class(code_points: Iterable[int]) -> str:
    def char(cp: int) -> str:
        return re.escape(chr(cp)) if chr(cp) in "\\]^-[" else chr(cp)

    return "".join(char(a) if a == b else f"{char(a)}-{char(b)}" for a, b in _ranges(code_points))


@functools.cache
def name_pattern() -> str:
    """A regular expression (JSON Schema's, and Python's) for the names :func:`normalise_name`
    accepts: no format or control character, and at least one that is not whitespace (NFKC maps no
    character to one of those, so the raw name can be judged). Built from this Python's Unicode
    database, as :func:`normalise_name` judges."""
    hidden = [cp for cp in range(sys.maxunicode + 1) if unicodedata.category(chr(cp)) in _HIDDEN]
    blank = [cp for cp in range(sys.maxunicode + 1) if chr(cp).isspace() and cp not in set(hidden)]
    anything = _character_class(hidden)
    visible = _character_class(sorted({*hidden, *blank}))
    return f"^[^{anything}]*[^{visible}][^{anything}]*$"


def normalise_name(name: str) -> str:
    """The name as stored: NFKC, whitespace collapsed, with no format or control characters.

    Raises:
        InvalidNameError: A format (Cf) or control (Cc) character, or nothing left.
    """
    return normalise_text(name, field="name", error=InvalidNameError)


def normalise_text(text: str, *, field: str, error: type[InputError] = InvalidTextError) -> str:
    """Text shown to people as stored: NFKC, whitespace collapsed, with no format or control characters.

    Raises:
        InvalidTextError (or ``error``): A format (Cf) or control (Cc) character, or nothing left;
            ``details`` name the ``field``.
    """
    normal = unicodedata.normalize("NFKC", text)
    for char in normal:
        category = unicodedata.category(char)
        if category in _HIDDEN:
            raise error(
                f"{field} may not hold invisible or control characters (U+{ord(char):04X}, category {category})",
                field=field,
                character=f"U+{ord(char):04X}",
            )
    collapsed = _SPACES.sub(" ", normal).strip()
    if not collapsed:
        raise error(f"{field} needs at least one visible character", field=field)
    return collapsed


def skeleton(name: str) -> str:
    """What the name looks like: equal skeletons read alike (see the module's docstring)."""
    mapped = "".join(_LOOK_ALIKES.get(char, char) for char in unicodedata.normalize("NFKC", name))
    folded = unicodedata.normalize("NFD", mapped.casefold())
    kept = "".join(_LOOK_ALIKES.get(c, c) for c in folded if unicodedata.category(c)[0] not in "MZC")
    # I (casefolded to i), l, 1 and | read as one letter: unified before the letter pairs, so that
    # "Clinic", "CIinic" and "C1inic" all meet "cl" (reading as d) alike.
    kept = kept.replace("i", "l")
    for pair, single in _SEQUENCES:
        kept = kept.replace(pair, single)
    return kept


def check_distinct(name: str, existing: Iterable[tuple[int, str]]) -> None:
    """Refuse ``name`` if it looks like one of ``existing`` (pairs of id and name) without being it.

    Raises:
        ConfusableNameError: Names the look-alike's id.
    """
    own = skeleton(name)
    for other_id, other in existing:
        if other != name and skeleton(other) == own:
            raise ConfusableNameError(
                f"{name!r} looks like the name of organisation {other_id}", field="name", existing=other_id
            )
