"""The audit's findings as one object, and its machine-readable JSON form.

:class:`AuditReport` gathers the replayed history, the discrepancies (view functions and index),
the index summary and timings. :meth:`AuditReport.to_json` is the stable JSON document;
:mod:`ledger.auditor.html_report` renders the same object for people.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ledger.auditor.chain_reader import AuditTarget
from ledger.auditor.index_check import IndexSummary
from ledger.auditor.replay import Discrepancy, History
from ledger.consent.terms import consent_state
from ledger.values import decode_code

DEFAULT_BUCKETS = 24


@dataclass(frozen=True)
class ActivityBucket:
    """Records (leaves) and roots anchored in one time interval ``[start, end)``."""

    start: int
    end: int
    records: int
    roots: int


@dataclass
class AuditReport:
    """The outcome of ``careledger-audit audit``."""

    target: AuditTarget
    chain_id: int
    head: int
    head_time: int
    history: History
    discrepancies: list[Discrepancy]
    index: IndexSummary | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    generated_at: float = field(default_factory=time.time)

    @property
    def clean(self) -> bool:
        """No discrepancy of any kind."""
        return not self.discrepancies

    def discrepancy_counts(self) -> dict[str, int]:
        return dict(sorted(Counter(d.kind for d in self.discrepancies).items()))

    def consent_states(self) -> dict[str, int]:
        """How many replayed consents are active, pending, expired or revoked at the head's time."""
        states = Counter(
            consent_state(fact.status, fact.valid_from, fact.valid_until, self.head_time).value
            for fact in self.history.consents.values()
        )
        return dict(sorted(states.items()))

    def activity(self, buckets: int = DEFAULT_BUCKETS) -> list[ActivityBucket]:
        """Anchored records per time bucket, from the first anchor to the last (equal widths)."""
        anchors = sorted(self.history.anchors.values(), key=lambda a: a.block_time)
        if not anchors:
            return []
        first, last = anchors[0].block_time, anchors[-1].block_time
        width = max(1, -(-(last - first + 1) // buckets))
        count = min(buckets, (last - first) // width + 1)
        records, roots = [0] * count, [0] * count
        for anchor in anchors:
            index = min(count - 1, (anchor.block_time - first) // width)
            records[index] += anchor.leaf_count
            roots[index] += 1
        return [ActivityBucket(first + i * width, first + (i + 1) * width, records[i], roots[i]) for i in range(count)]

    def to_json(self) -> dict[str, Any]:
        """The machine-readable report."""
        history = self.history
        return {
            "type": "careledger-audit-report",
            "version": 1,
            "generatedAt": round(self.generated_at, 3),
            "chain": {
                "chainId": self.chain_id,
                "head": self.head,
                "headTime": self.head_time,
                "recordAnchor": self.target.record_anchor,
                "consentRegistry": self.target.consent_registry,
                "fromBlock": self.target.from_block,
            },
            "verdict": "clean" if self.clean else "discrepancies",
            "discrepancyCounts": self.discrepancy_counts(),
            "discrepancies": [d.to_json() for d in self.discrepancies],
            "events": history.event_counts(),
            "anchoring": {
                "roots": len(history.anchors),
                "records": sum(a.leaf_count for a in history.anchors.values()),
                "recordsByAnchorer": history.leaves_by_anchorer(),
                "activity": [
                    {"start": b.start, "end": b.end, "records": b.records, "roots": b.roots} for b in self.activity()
                ],
            },
            "anchorerRole": [
                {"account": c.account, "granted": c.granted, "block": c.block_number, "by": c.sender}
                for c in history.roles.changes()
            ],
            "consents": {
                "keys": len(history.consents),
                "states": self.consent_states(),
                "guardians": len(history.guardians),
            },
            "breakGlass": history.break_glass,
            "amendments": history.amendments,
            "retractions": history.retractions,
            "index": self.index.to_json() if self.index else None,
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
        }


def consent_rows(report: AuditReport, limit: int) -> list[dict[str, Any]]:
    """The first ``limit`` replayed consents, readable (for the HTML report)."""
    rows = []
    for (patient, grantee, scope, purpose), fact in list(report.history.consents.items())[:limit]:
        rows.append(
            {
                "patient": patient,
                "grantee": grantee,
                "scope": decode_code(scope),
                "purpose": decode_code(purpose),
                "state": consent_state(fact.status, fact.valid_from, fact.valid_until, report.head_time).value,
                "validFrom": fact.valid_from,
                "validUntil": fact.valid_until,
            }
        )
    return rows
