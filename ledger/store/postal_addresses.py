"""Organisations' postal addresses: what a patient's accounting of disclosures names each recipient by,
beside its name and chain account (HIPAA 164.528(b)(2)(ii): "the address of such entity or person, if known").

An address is registered by an admin, off chain (it is no PHI, but nothing on chain needs it), and
shown to people: each part is stored as :func:`~ledger.store.organisation_names.normalise_text`
makes it (NFKC, no invisible or control characters), in the shape of a FHIR ``Address``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson

from ledger.exceptions import InvalidTextError
from ledger.store.database import Connection, with_tx
from ledger.store.organisation_names import normalise_text

MAX_LINES: Final = 4
MAX_PART_LENGTH: Final = 100


@dataclass(frozen=True)
class PostalAddress:
    """A postal address as FHIR's ``Address`` has it: street lines, city, state, postal code, country."""

    lines: tuple[str, ...]
    city: str | None = None
    state: str | None = None
    postal_code: str | None = None
    country: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The address as the API shows it and the store keeps it (``postalCode`` camel-cased, absent parts null)."""
        return {
            "lines": list(self.lines),
            "city": self.city,
            "state": self.state,
            "postalCode": self.postal_code,
            "country": self.country,
        }

    def to_fhir(self) -> dict[str, Any]:
        """The FHIR R4 ``Address`` (``use`` work, ``type`` postal)."""
        parts = {"city": self.city, "state": self.state, "postalCode": self.postal_code, "country": self.country}
        present = {name: value for name, value in parts.items() if value is not None}
        return {"use": "work", "type": "postal", **({"line": list(self.lines)} if self.lines else {}), **present}

    def one_line(self) -> str:
        """Every part in reading order, comma-separated (for a printed page)."""
        parts = [*self.lines, self.postal_code, self.city, self.state, self.country]
        return ", ".join(part for part in parts if part)


def postal_address(
    lines: Sequence[str],
    *,
    city: str | None = None,
    state: str | None = None,
    postal_code: str | None = None,
    country: str | None = None,
) -> PostalAddress:
    """An address with each part normalised, refused if a part hides text or is too long.

    Raises:
        InvalidTextError: More than :data:`MAX_LINES` lines, a part over :data:`MAX_PART_LENGTH`
            characters, a part with invisible or control characters, or no part at all.
    """
    if len(lines) > MAX_LINES:
        raise InvalidTextError(f"an address has at most {MAX_LINES} lines", field="postalAddress.lines")
    named = {"city": city, "state": state, "postalCode": postal_code, "country": country}
    kept = [_part(line, f"postalAddress.lines[{i}]") for i, line in enumerate(lines)]
    parts = {
        name: _part(value, f"postalAddress.{name}") if value is not None else None for name, value in named.items()
    }
    if not kept and not any(parts.values()):
        raise InvalidTextError("an address needs at least one part", field="postalAddress")
    return PostalAddress(tuple(kept), parts["city"], parts["state"], parts["postalCode"], parts["country"])


def _part(text: str, field: str) -> str:
    """One part as stored; its length is judged as sent (NFKC may lengthen a few characters)."""
    if len(text) > MAX_PART_LENGTH:
        raise InvalidTextError(f"{field} is longer than {MAX_PART_LENGTH} characters", field=field)
    return normalise_text(text, field=field)


def stored_postal_address(text: str | None) -> PostalAddress | None:
    """The address as the ``postal_address`` column holds it (None: none registered)."""
    if text is None:
        return None
    data = orjson.loads(text)
    return PostalAddress(
        tuple(data["lines"]), data.get("city"), data.get("state"), data.get("postalCode"), data.get("country")
    )


def postal_address_text(address: PostalAddress | None) -> str | None:
    """The ``postal_address`` column's value for ``address``."""
    return orjson.dumps(address.to_json()).decode("utf-8") if address is not None else None


def set_postal_address(conn: Connection, organisation_id: int, address: PostalAddress | None) -> None:
    """Register (or, with None, remove) an organisation's postal address."""
    text = postal_address_text(address)
    with_tx(
        conn, lambda: conn.execute("UPDATE organisations SET postal_address = ? WHERE id = ?", (text, organisation_id))
    )
