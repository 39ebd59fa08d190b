"""The snapshot → stream handover of a sequenced table, audited change by change.

A connector that starts on a table with rows reads them first (op "r", the *snapshot*) and
then streams from a point of the log the snapshot is consistent with. A change committed
before that point is *folded into* the snapshot: the row's read carries it, nothing streams
it. A change committed after it must be streamed. So, for the committed operations of a
:class:`~cdc_support.faults.workload.SequencedWorkload` on a preloaded table:

* the stream starts at the first operation it delivered; every operation from there on is
  audited by :class:`~cdc_support.checks.delivery.DeliveryAudit` (lost, duplicated,
  unexpected), the ones before it were folded into the snapshot;
* ``doubled``: streamed changes the snapshot had already read (the row's read carries that
  ``seq`` or a later one) — the topic holds them twice; an upsert makes them harmless;
* ``reread``: reads beyond one per row — a snapshot that was restarted reads rows again.

Whether the folded changes really are in the snapshot is what the rebuilt table shows
(:func:`cdc_support.faults.run.rebuilt_against_source`): it must equal the source.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cdc_support.checks.delivery import AuditReport, Change, DeliveryAudit
from cdc_support.events import ChangeEvent

if TYPE_CHECKING:
    from cdc_support.faults.workload import SequencedOp

__all__ = ["HandoverAudit", "HandoverReport", "from_last_snapshot", "snapshot_attempts"]

FIRST_READ = "first"
"""Debezium's ``source.snapshot`` on the first read of a snapshot."""


def snapshot_attempts(events: Sequence[ChangeEvent]) -> list[int]:
    """Where each snapshot starts in ``events``: the indexes of reads marked
    ``source.snapshot = "first"`` (a snapshot that was restarted starts twice)."""
    return [
        i
        for i, e in enumerate(events)
        if e.op == "r" and str(e.source.get("snapshot", "")).lower() == FIRST_READ
    ]


def from_last_snapshot(events: Sequence[ChangeEvent]) -> list[ChangeEvent]:
    """The events from the last snapshot's first read on: what a consumer rebuilds from when
    a snapshot starts again (its reads replace the unfinished attempt's). Without a marked
    first read, all of them."""
    starts = snapshot_attempts(events)
    return list(events[starts[-1] :] if starts else events)


@dataclass(frozen=True)
class HandoverReport:
    """What the snapshot read and what the stream delivered of a workload on a preloaded
    table (see the module docstring)."""

    preloaded: int
    committed: int
    reads: int
    rows_read: int
    reread: int
    attempts: int
    """Snapshots started (their first reads): 1, or more when one was restarted."""
    folded_into_snapshot: int
    first_streamed_seq: int | None
    stream: AuditReport
    doubled: int
    committed_while_reading: int
    read_seconds: float | None

    @property
    def lost(self) -> int:
        """Changes from the stream's start on that were never delivered."""
        return len(self.stream.lost)

    def summary(self) -> str:
        """One paragraph with the counts."""
        window = (
            "no read seen"
            if self.read_seconds is None
            else f"reads over {self.read_seconds:.1f} s, {self.committed_while_reading} "
            "operations committed meanwhile"
        )
        start = (
            "nothing streamed"
            if self.first_streamed_seq is None
            else f"stream starts at operation {self.first_streamed_seq}"
        )
        return (
            f"{self.preloaded} rows preloaded, {self.committed} operations committed; "
            f"snapshot: {self.attempts} started, {self.reads} reads of {self.rows_read} rows "
            f"({self.reread} re-reads), "
            f"{window}; {start}, {self.folded_into_snapshot} operations folded into the "
            f"snapshot; stream: {self.stream.summary(examples=3)}; {self.doubled} streamed "
            "changes the snapshot had already read"
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready counts (for the report)."""
        return {
            "rows preloaded": self.preloaded,
            "operations committed": self.committed,
            "snapshots started": self.attempts,
            "snapshot reads": self.reads,
            "rows read": self.rows_read,
            "re-reads (a restarted snapshot)": self.reread,
            "seconds from the first read to the last": self.read_seconds,
            "operations committed while the snapshot read": self.committed_while_reading,
            "first operation streamed": self.first_streamed_seq,
            "operations folded into the snapshot": self.folded_into_snapshot,
            "streamed changes already in the snapshot (doubled in the topic)": self.doubled,
            "stream audit": self.stream.as_dict(examples=5),
        }


class HandoverAudit:
    """Audits a snapshot followed by a stream against a sequenced workload's operations on
    a table preloaded with rows 1..``preloaded`` (``seq`` 0)."""

    def __init__(
        self, ops: Sequence[SequencedOp], *, preloaded: int, seq_column: str = "seq"
    ) -> None:
        self.ops, self.preloaded, self.seq_column = list(ops), preloaded, seq_column

    def audit(self, events: Iterable[ChangeEvent]) -> HandoverReport:
        """Split the events into reads and the stream and account for both."""
        events = list(events)
        reads = [e for e in events if e.op == "r"]
        streamed = [e for e in events if e.op != "r"]
        by_identity = DeliveryAudit(self.ops, seq_column=self.seq_column)
        streamed_changes = {by_identity.identity(e) for e in streamed}
        first = next((op.seq for op in self.ops if _change(op) in streamed_changes), None)
        from_start = [op for op in self.ops if first is not None and op.seq >= first]
        read_seq: dict[Any, int] = {}
        for event in reads:
            seq = self._seq(event)
            if seq is not None:
                read_seq[event.key] = max(seq, read_seq.get(event.key, seq))
        doubled = sum(
            1
            for e in streamed
            if e.op != "d" and (seq := self._seq(e)) is not None and seq <= read_seq.get(e.key, -1)
        )
        seen = [e.observed_ts for e in reads if e.observed_ts is not None]
        window = (min(seen), max(seen)) if seen else None
        return HandoverReport(
            preloaded=self.preloaded,
            committed=len(self.ops),
            reads=len(reads),
            rows_read=len({e.key for e in reads}),
            reread=len(reads) - len({e.key for e in reads}),
            attempts=len(snapshot_attempts(events)),
            folded_into_snapshot=len(self.ops) - len(from_start),
            first_streamed_seq=first,
            stream=DeliveryAudit(from_start, seq_column=self.seq_column).audit(streamed),
            doubled=doubled,
            committed_while_reading=0
            if window is None
            else sum(1 for op in self.ops if window[0] <= op.committed_at <= window[1]),
            read_seconds=None if window is None else window[1] - window[0],
        )

    def _seq(self, event: ChangeEvent) -> int | None:
        value = (event.after or {}).get(self.seq_column)
        with contextlib.suppress(TypeError, ValueError):
            return int(value)
        return None


def _change(op: SequencedOp) -> Change:
    return Change(op.key, op.op, None if op.op == "d" else op.seq)
