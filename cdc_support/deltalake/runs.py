"""Consumer runs recorded for checks: what was handled, what happened while stopped, the audit.

* :class:`Handled` — the batches a :class:`~cdc_support.deltalake.consumer.CdfConsumer` handed
  to its handler; :func:`run_batches` and :func:`run_to_end` fill one;
* :class:`Outage` — commits made while a consumer was stopped, and what VACUUM removed;
* :class:`PollFailure` — the error a poll raised;
* :class:`RestartAudit` — per key, events handled across a restart vs one full read.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from cdc_support.checks.delivery import compare_per_key
from cdc_support.deltalake.consumer import CdfBatch, CdfConsumer
from cdc_support.deltalake.log import CdfVersionsUnavailable
from cdc_support.deltalake.tables import DeltaCommit
from cdc_support.events import ChangeEvent

__all__ = [
    "Handled",
    "Outage",
    "PollFailure",
    "RestartAudit",
    "contiguous",
    "run_batches",
    "run_to_end",
]

Key = tuple[Any, ...]
Position = tuple[int, str]


@dataclass
class Handled:
    """What a consumer handed to its handler, batch by batch."""

    batches: list[CdfBatch] = field(default_factory=list)

    @property
    def events(self) -> list[ChangeEvent]:
        """Every handled event, in the order handled."""
        return [e for b in self.batches for e in b.events]

    @property
    def spans(self) -> list[tuple[int, int]]:
        """The (first, last) version of each batch."""
        return [(b.first_version, b.last_version) for b in self.batches]

    def __repr__(self) -> str:
        spans = ", ".join(f"{first}..{last}" for first, last in self.spans)
        return f"handled versions {spans or 'none'}"

    def summary_rows(self) -> list[dict[str, Any]]:
        """One row per batch: its versions, event counts and the checkpoint after it."""
        return [
            {
                "versions": f"{b.first_version}..{b.last_version}",
                "events": len(b.events),
                **{op: sum(e.op == op for e in b.events) for op in "cud"},
                "checkpoint after": b.last_version,
            }
            for b in self.batches
        ]


def run_batches(consumer: CdfConsumer, count: int, size: int) -> Handled:
    """Handle ``count`` batches of at most ``size`` versions (handle, then commit, each)."""
    handled = Handled()
    for _ in range(count):
        batch = consumer.run_once(handled.batches.append, max_versions=size)
        if batch.empty:
            raise AssertionError("the table ran out of versions before the consumer stopped")
    return handled


def run_to_end(consumer: CdfConsumer, size: int) -> Handled:
    """Handle the feed to the latest version, ``size`` versions at a time."""
    handled = Handled()
    consumer.run_to_end(handled.batches.append, max_versions=size)
    return handled


@dataclass
class Outage:
    """Commits made while the consumer was stopped, and what VACUUM removed."""

    appends: list[DeltaCommit]
    update: DeltaCommit
    vacuumed: list[str] = field(default_factory=list)

    @property
    def commits(self) -> list[DeltaCommit]:
        """The appends, then the update."""
        return [*self.appends, self.update]

    @property
    def gone(self) -> list[int]:
        """The versions whose files VACUUM removes (the appends: read from data files)."""
        return [c.version for c in self.appends]

    def __repr__(self) -> str:
        return f"appends at versions {self.gone}, vacuumed files"


@dataclass(frozen=True)
class PollFailure:
    """The error a poll raised (short repr for the report)."""

    error: CdfVersionsUnavailable

    def __repr__(self) -> str:
        return f"{type(self.error).__name__}(needed={self.error.needed})"


def _per_key(events: Sequence[ChangeEvent]) -> dict[Key, list[Position]]:
    by_key: dict[Key, list[Position]] = defaultdict(list)
    for event in events:
        by_key[event.key].append((event.source["version"], event.op))
    return dict(by_key)


@dataclass
class RestartAudit:
    """Per key, the (version, op) events handled across a restart vs one full read."""

    handled: dict[Key, list[Position]]
    expected: dict[Key, list[Position]]
    lost: dict[Key, list[Position]]
    repeated: dict[Key, list[Position]]

    @classmethod
    def of(cls, handled: Sequence[ChangeEvent], reference: Sequence[ChangeEvent]) -> RestartAudit:
        """Compare what the consumers handled with a full read of the feed."""
        got, want = _per_key(handled), _per_key(reference)
        differences = compare_per_key(want, got)
        return cls(got, want, differences.lost, differences.extra)

    @property
    def same_sequences(self) -> bool:
        """True when every key's (version, op) list equals the full read's."""
        return self.handled == self.expected

    def summary(self) -> dict[str, Any]:
        """JSON-ready counts, and the lost and repeated events by key."""
        return {
            "keys": len(self.expected),
            "events expected": sum(map(len, self.expected.values())),
            "events handled": sum(map(len, self.handled.values())),
            "lost": {str(k): v for k, v in self.lost.items()},
            "repeated": {str(k): v for k, v in self.repeated.items()},
        }


def contiguous(spans: Sequence[tuple[int, int]]) -> bool:
    """True when each span starts right after the one before."""
    return all(b[0] == a[1] + 1 for a, b in pairwise(spans))
