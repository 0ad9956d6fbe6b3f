"""Render an :class:`~ledger.auditor.report.AuditReport` as one self-contained HTML page.

No external file of any kind: the CSS is inline and the anchoring chart is an inline SVG drawn
here, so the page can be archived, mailed or opened offline and still shows everything. Every
value from the chain or the index is escaped twice: control and other non-printable characters
(bidirectional overrides that reorder what a reader sees, escape sequences for whoever views the
file in a terminal) as their escapes (:func:`ledger.command_line.escape_text`), then HTML.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from ledger.auditor.report import ActivityBucket, AuditReport, consent_rows
from ledger.command_line import escape_text

MAX_ROWS = 500
"""Rows shown per table (the JSON report has them all)."""

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#1d232a;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.2em;margin-top:1.8em;border-bottom:1px solid #d0d7de}
table{border-collapse:collapse;width:100%;margin:.5em 0}th,td{border:1px solid #d0d7de;padding:4px 6px;
text-align:left;vertical-align:top}th{background:#f3f5f7}td{font-family:ui-monospace,monospace;font-size:12px;
word-break:break-all}.verdict{display:inline-block;padding:.3em .8em;border-radius:4px;font-weight:600}
.clean{background:#dafbe1;color:#116329}.bad{background:#ffebe9;color:#a40e26}.muted{color:#57606a}
dl{display:grid;grid-template-columns:max-content auto;gap:2px 16px}dt{font-weight:600}dd{margin:0;
font-family:ui-monospace,monospace}svg text{font:11px system-ui,sans-serif;fill:#57606a}
"""


def _e(value: Any) -> str:
    return html.escape(escape_text("" if value is None else str(value)))


def _time(timestamp: int | float | None) -> str:
    if timestamp is None:
        return ""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]], total: int | None = None) -> str:
    body = []
    for count, row in enumerate(rows):
        if count == MAX_ROWS:
            break
        body.append("<tr>" + "".join(f"<td>{_e(v)}</td>" for v in row) + "</tr>")
    if not body:
        return '<p class="muted">none</p>'
    more = (
        f'<p class="muted">showing {len(body)} of {total} (all are in the JSON report)</p>'
        if total is not None and total > len(body)
        else ""
    )
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>{more}"


def activity_svg(buckets: Sequence[ActivityBucket], width: int = 960, height: int = 220) -> str:
    """Bars of records anchored per time bucket, as an inline SVG with axis labels and tooltips."""
    if not buckets:
        return '<p class="muted">nothing anchored</p>'
    left, bottom, top = 60, 40, 10
    plot_w, plot_h = width - left - 10, height - bottom - top
    peak = max(b.records for b in buckets) or 1
    bar_w = plot_w / len(buckets)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="records anchored per time bucket">',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 10}" y2="{top + plot_h}" stroke="#8c959f"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#8c959f"/>',
        f'<text x="{left - 6}" y="{top + 10}" text-anchor="end">{peak:,}</text>',
        f'<text x="{left - 6}" y="{top + plot_h}" text-anchor="end">0</text>',
    ]
    for i, bucket in enumerate(buckets):
        bar_h = plot_h * bucket.records / peak
        x, y = left + i * bar_w + 1, top + plot_h - bar_h
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(1.0, bar_w - 2):.1f}" height="{bar_h:.1f}" '
            f'fill="#2f81f7"><title>{_e(_time(bucket.start))}: {bucket.records:,} records in '
            f"{bucket.roots} batches</title></rect>"
        )
    parts.append(f'<text x="{left}" y="{height - 12}">{_e(_time(buckets[0].start))}</text>')
    parts.append(f'<text x="{width - 10}" y="{height - 12}" text-anchor="end">{_e(_time(buckets[-1].end))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def render_html(report: AuditReport) -> str:
    """The whole report as one HTML document."""
    data = report.to_json()
    history = report.history
    verdict = (
        '<span class="verdict clean">no discrepancies</span>'
        if report.clean
        else f'<span class="verdict bad">{len(report.discrepancies)} discrepancies</span>'
    )
    chain = data["chain"]
    facts = "".join(
        f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>"
        for k, v in [
            ("chain id", chain["chainId"]),
            ("head block", f"{chain['head']} ({_time(chain['headTime'])})"),
            ("RecordAnchor", chain["recordAnchor"]),
            ("ConsentRegistry", chain["consentRegistry"]),
            ("history from block", chain["fromBlock"]),
            ("events replayed", sum(data["events"].values())),
            ("roots anchored", data["anchoring"]["roots"]),
            ("records anchored", f"{data['anchoring']['records']:,}"),
            ("consents", data["consents"]["keys"]),
            ("guardians", data["consents"]["guardians"]),
            ("index", data["index"]["path"] if data["index"] else "not given"),
            ("timings (s)", ", ".join(f"{k} {v}" for k, v in data["seconds"].items())),
            ("generated", _time(report.generated_at)),
        ]
    )
    sections = [
        f"<h1>CareLedger audit</h1><p>{verdict}</p><dl>{facts}</dl>",
        "<h2>Discrepancies</h2>"
        + (_table(["kind", "count"], data["discrepancyCounts"].items()) if report.discrepancies else "")
        + _table(
            ["kind", "subject", "detail", "expected", "actual"],
            ((d.kind, d.subject, d.detail, d.expected, d.actual) for d in report.discrepancies),
            len(report.discrepancies),
        ),
        "<h2>Anchoring activity (records anchored per time bucket)</h2>" + activity_svg(report.activity()),
        "<h2>Records anchored per anchorer</h2>"
        + _table(["anchorer", "records"], data["anchoring"]["recordsByAnchorer"].items()),
        "<h2>ANCHORER_ROLE history</h2>"
        + _table(
            ["account", "change", "block", "by"],
            (
                (c["account"], "granted" if c["granted"] else "revoked", c["block"], c["by"])
                for c in data["anchorerRole"]
            ),
        ),
        "<h2>Break-glass accesses</h2>"
        + _table(
            ["time", "patient", "accessor", "scope", "reason", "block", "transaction"],
            (
                (_time(b["time"]), b["patient"], b["accessor"], b["scope"], b["reason"], b["block"], b["transaction"])
                for b in history.break_glass
            ),
            len(history.break_glass),
        ),
        "<h2>Amendments</h2>"
        + _table(
            ["time", "original leaf", "amended leaf", "anchorer", "transaction"],
            (
                (_time(a["time"]), a["originalLeaf"], a["amendedLeaf"], a["anchorer"], a["transaction"])
                for a in history.amendments
            ),
            len(history.amendments),
        ),
        "<h2>Retractions</h2>"
        + _table(
            ["time", "leaf", "reason", "anchorer", "transaction"],
            ((_time(r["time"]), r["leaf"], r["reason"], r["anchorer"], r["transaction"]) for r in history.retractions),
            len(history.retractions),
        ),
        "<h2>Consents</h2>"
        + _table(["state", "count"], data["consents"]["states"].items())
        + _table(
            ["patient", "grantee", "scope", "purpose", "state", "valid from", "valid until"],
            (
                (
                    c["patient"],
                    c["grantee"],
                    c["scope"],
                    c["purpose"],
                    c["state"],
                    _time(c["validFrom"]),
                    _time(c["validUntil"]),
                )
                for c in consent_rows(report, MAX_ROWS)
            ),
            len(history.consents),
        ),
        "<h2>Events replayed</h2>" + _table(["event", "count"], data["events"].items()),
    ]
    if data["index"]:
        sections.append(
            "<h2>Index</h2>"
            + _table(["fact", "value"], ((k, v) for k, v in data["index"].items() if k != "leavesByOrganisation"))
            + _table(
                ["organisation account", "records in anchored batches"], data["index"]["leavesByOrganisation"].items()
            )
        )
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>CareLedger audit, block '
        f"{report.head}</title><style>{_CSS}</style></head><body>{''.join(sections)}</body></html>\n"
    )
