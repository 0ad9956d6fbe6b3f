"""The HTML report escapes what the chain or the index says: markup, and the characters that would
reorder or hide text for a reader (bidirectional overrides) or drive a terminal showing the file."""

from __future__ import annotations

from ledger.auditor.chain_reader import AuditTarget
from ledger.auditor.html_report import render_html
from ledger.auditor.record_changes import RecordChange
from ledger.auditor.replay import Discrepancy, History
from ledger.auditor.report import AuditReport

CONTRACT = "0x" + "ab" * 20


def test_hostile_values_are_escaped_in_the_page() -> None:
    history = History()
    history.record_changes.append(
        RecordChange("retraction", "", "0x00", "0x00", 0, "", time=0, reason="\x1b[2J<img src=x onerror=alert(1)>")
    )
    report = AuditReport(
        AuditTarget(CONTRACT, CONTRACT),
        1,
        1,
        0,
        history,
        [Discrepancy("index", "<script>alert(1)</script>\u202egnp.exe", "line\r\nbreak")],
    )
    page = render_html(report)
    assert "<script>alert" not in page and "<img" not in page
    assert "\x1b" not in page and "\u202e" not in page and "\r" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;\\u202egnp.exe" in page
    assert "\\x1b[2J&lt;img src=x onerror=alert(1)&gt;" in page
