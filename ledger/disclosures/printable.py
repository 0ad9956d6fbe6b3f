"""An :class:`~ledger.disclosures.accounting.Accounting` as one printable, self-contained HTML page.

Nothing is loaded from anywhere: the CSS is inline (allowed by its hash in the page's own
Content-Security-Policy, which also forbids every script), so the saved file prints and opens
offline the same. Every value is escaped twice, as in the auditor's report: non-printable
characters (bidirectional overrides that reorder what a reader sees) as their escapes
(:func:`ledger.command_line.escape_text`), then HTML; organisation names come from organisations.
The receipts themselves are in the JSON and FHIR forms; this page names each audit record and
where it was anchored.
"""

from __future__ import annotations

import base64
import hashlib
import html
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Final

from ledger.command_line import escape_text
from ledger.disclosures.accounting import (
    NOTES,
    Accounting,
    AccountingEntry,
    Section,
    refusal_description,
)
from ledger.disclosures.period import MAX_YEARS

_CSS: Final = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#1d232a;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #d0d7de}
table{border-collapse:collapse;width:100%;margin:.5em 0}th,td{border:1px solid #d0d7de;padding:4px 6px;
text-align:left;vertical-align:top}th{background:#f3f5f7}.mono{font-family:ui-monospace,monospace;font-size:12px;
word-break:break-all}.muted{color:#57606a}dl{display:grid;grid-template-columns:max-content auto;gap:2px 16px}
dt{font-weight:600}dd{margin:0}.break-glass th{background:#fff1e0}
@media print{body{margin:0;max-width:none;font-size:11px}h2{break-after:avoid}tr{break-inside:avoid}}
"""
CONTENT_SECURITY_POLICY: Final = (
    "default-src 'none'; "
    f"style-src 'sha256-{base64.b64encode(hashlib.sha256(_CSS.encode()).digest()).decode()}'; "
    "base-uri 'none'; form-action 'none'"
)
"""The page's policy: its own inline CSS, nothing else (no script runs, nothing is fetched)."""

_TITLES: Final[dict[Section, str]] = {
    "disclosures": "Disclosures",
    "break_glass": "Emergency (break-glass) accesses",
    "denied": "Denied attempts",
}
_EMPTY: Final[dict[Section, str]] = {
    "disclosures": "No organisation saw your data in this period.",
    "break_glass": "No emergency access to your data in this period.",
    "denied": "No request for your data was refused in this period.",
}


def _e(value: object) -> str:
    return html.escape(escape_text("" if value is None else str(value)))


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _recipient(entry: AccountingEntry) -> str:
    address = entry.recipient.postal_address
    postal = (
        _e(address.one_line()) if address is not None else '<span class="muted">postal address: not registered</span>'
    )
    return f"{_e(entry.recipient.name)}<br><span class=mono>{_e(entry.recipient.address)}</span><br>{postal}"


def _anchoring(entry: AccountingEntry) -> str:
    record = f"<span class=mono>{_e(entry.event.record_id)}</span>"
    receipt = entry.receipt
    if receipt is None:
        return f'{record}<br><span class="muted">{_e(entry.stage)}: no receipt yet</span>'
    return (
        f"{record}<br>anchored in block {_e(receipt.block_number)} of chain {_e(receipt.chain_id)}, "
        f"transaction <span class=mono>{_e('0x' + receipt.transaction_hash.hex())}</span>"
    )


def _row(section: Section, entry: AccountingEntry) -> list[str]:
    cells = [_e(entry.date), _recipient(entry), _e(entry.description), _e(entry.purpose)]
    if section == "break_glass":
        tx = entry.event.chain_tx
        cells.append(_e(entry.event.reason) + (f"<br><span class=mono>{_e('0x' + tx.hex())}</span>" if tx else ""))
    elif section == "denied":
        cells.append(_e(refusal_description(entry.event.reason)))
    cells.append(_anchoring(entry))
    return cells


def _headers(section: Section) -> Sequence[str]:
    who = "Organisation that asked" if section == "denied" else "Recipient"
    what = "Data asked for" if section == "denied" else "Data disclosed"
    extra = {"disclosures": [], "break_glass": ["Reason (on-chain record)"], "denied": ["Why it was refused"]}[section]
    return ["Date (UTC)", who, what, "Purpose", *extra, "Audit record"]


def _section(accounting: Accounting, section: Section) -> str:
    entries = accounting.section(section)
    title = f'<h2 id="{section}">{_TITLES[section]} ({len(entries)})</h2>'
    if not entries:
        return f'{title}<p class="muted">{_EMPTY[section]}</p>'
    head = "".join(f"<th>{_e(h)}</th>" for h in _headers(section))
    rows = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in _row(section, e)) + "</tr>" for e in entries)
    table = f'<table class="{section.replace("_", "-")}"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'
    return title + table


def render_accounting(accounting: Accounting) -> str:
    """The whole page (UTF-8 text)."""
    period = accounting.period
    sections = "".join(_section(accounting, s) for s in ("disclosures", "break_glass", "denied"))
    notes = "".join(f"<li>{_e(note)}</li>" for note in NOTES)
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Accounting of disclosures for {_e(accounting.patient)}</title>"
        f"<style>{_CSS}</style></head><body>"
        "<h1>Accounting of disclosures</h1>"
        f'<p class="muted">Under HIPAA 45 CFR 164.528: every disclosure of your health data over the period '
        f"(at most {MAX_YEARS} years), emergency accesses and refused requests, from CareLedger's anchored audit "
        "trail.</p>"
        f"<dl><dt>Patient</dt><dd class=mono>{_e(accounting.patient)}</dd>"
        f"<dt>Period</dt><dd>{_e(period.start)} to {_e(period.end)} (UTC, both days included)</dd>"
        f"<dt>Prepared</dt><dd>{_e(_when(accounting.generated_at))}</dd></dl>"
        f"{sections}<h2>Notes</h2><ul>{notes}</ul></body></html>\n"
    )
