"""The worker's commit log: one JSON line per batch, and the checks read from it.

Lines (``kind``):

* ``start`` — a worker run began: pid, the positions the table recorded and those the
  consumer group had committed;
* ``commit`` — a batch written in one table commit: its number, the table version, the
  offset range per partition, when its first record was read (``opened_at``), how long
  the commit took (``seconds``), when it became visible (``visible_at``, epoch seconds),
  counts, and every change event it held as ``[partition, offset, op, key, source commit
  time]``;
* ``skip`` — a batch the table had applied already (a replay after a crash), not written;
* ``consumed`` — a batch without changes (only tombstones or dead letters), not written;
* ``maintenance`` — snapshot expiry, compaction or OPTIMIZE;
* ``stop`` — the run ended (a run killed with SIGKILL has none).

A batch the table refused for its data is committed in parts (halves, halves of halves, ...):
each part has a ``commit`` or ``consumed`` line of its own, with the batch number, its
``part`` ("a", "ba", ...) and the offset range it holds.

The line of a commit is written after the commit returned, so a worker killed in between
leaves a commit without a line: :func:`audit` finds it from the position the next run's
``start`` line read back from the table.
"""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from cdc_support.events import ChangeEvent
from cdc_support.sinks.positions import Positions, positions_to_json

__all__ = ["CommitLog", "SinkAudit", "applied_events", "audit", "lag_samples", "read_commit_log"]


class CommitLog:
    """Appends JSON lines to a file (flushed per line); a no-op without a path."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path else None
        self._fh: IO[str] | None = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def write(self, kind: str, **fields: Any) -> None:
        """Append one line ``{"kind": kind, "time": now, **fields}``."""
        if self._fh is None:
            return
        line = json.dumps({"kind": kind, "time": time.time(), **fields}, default=str)
        self._fh.write(line + "\n")
        self._fh.flush()

    def close(self) -> None:
        """Close the file."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def read_commit_log(path: str | Path) -> list[dict[str, Any]]:
    """Every complete line of a commit log (a line cut short by SIGKILL is left out)."""
    entries = []
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    for line in text.splitlines():
        try:
            entries.append(json.loads(line))
        except ValueError:
            continue
    return entries


def positions_field(positions: Positions) -> dict[str, dict[str, int]]:
    """Positions as a JSON object for a log line."""
    return json.loads(positions_to_json(positions))


def _spans(entry: Mapping[str, Any]) -> Iterable[tuple[str, int, int, int]]:
    for topic, partitions in (entry.get("ranges") or {}).items():
        for partition, (first, nxt) in partitions.items():
            yield topic, int(partition), int(first), int(nxt)


@dataclass
class SinkAudit:
    """Exactly-once accounting of one or more worker runs, from their commit log."""

    runs: int = 0
    commits: int = 0
    events_applied: int = 0
    skipped_batches: int = 0
    skipped_records: int = 0
    duplicated_offsets: list[tuple[str, int, int]] = field(default_factory=list)
    below_stored: list[str] = field(default_factory=list)
    gaps: list[str] = field(default_factory=list)
    unlogged: list[str] = field(default_factory=list)

    @property
    def exactly_once(self) -> bool:
        """No offset applied twice, none applied below the position the table recorded when
        a run started, and no offset range never consumed."""
        return not (self.duplicated_offsets or self.below_stored or self.gaps)

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly summary (lists shortened)."""
        return {
            "exactly_once": self.exactly_once,
            "runs": self.runs,
            "commits": self.commits,
            "events_applied": self.events_applied,
            "skipped_batches": self.skipped_batches,
            "skipped_replayed_records": self.skipped_records,
            "offsets_applied_twice": [list(d) for d in self.duplicated_offsets[:20]],
            "applied_below_recorded_position": self.below_stored[:20],
            "never_consumed": self.gaps[:20],
            "committed_but_not_logged": self.unlogged[:20],
        }

    def summary(self) -> str:
        """One line."""
        return (
            f"{self.runs} runs, {self.commits} commits, {self.events_applied} events applied, "
            f"{self.skipped_records} replayed records skipped; {len(self.duplicated_offsets)} "
            f"offsets applied twice, {len(self.below_stored)} applied below the recorded "
            f"position, {len(self.gaps)} ranges never consumed"
        )


def audit(entries: Sequence[Mapping[str, Any]]) -> SinkAudit:
    """Check from the log that every record was taken exactly once across runs.

    * every change event's offset is in at most one ``commit`` line;
    * no run applies an offset below the position the table recorded when it started (its
      ``start`` line): those were applied by an earlier run, logged or not;
    * per partition, the ranges of ``commit``, ``skip`` and ``consumed`` lines leave no
      offset between the first and the last unconsumed. A commit the killed run made
      without logging it is the range between the last logged offset and the position the
      next run read back from the table (``unlogged``: counted as consumed).
    """
    result = SinkAudit()
    applied: Counter[tuple[str, int, int]] = Counter()
    covered: dict[tuple[str, int], list[tuple[int, int]]] = defaultdict(list)
    stored_now: dict[tuple[str, int], int] = {}
    for entry in entries:
        kind = entry.get("kind")
        if kind == "start":
            result.runs += 1
            stored_now = {
                (t, int(p)): int(o)
                for t, parts in (entry.get("stored") or {}).items()
                for p, o in parts.items()
            }
            for tp, stored in stored_now.items():
                end = max((n for _, n in covered[tp]), default=None)
                if end is not None and stored > end:
                    result.unlogged.append(f"{tp[0]}/{tp[1]} offsets {end}..{stored - 1}")
                    covered[tp].append((end, stored))
            continue
        if kind not in ("commit", "skip", "consumed"):
            continue
        topic = str(entry.get("topic", ""))
        if kind == "commit":
            result.commits += 1
            for event in entry.get("events") or []:
                partition, offset = int(event[0]), int(event[1])
                applied[(topic, partition, offset)] += 1
                result.events_applied += 1
                if offset < stored_now.get((topic, partition), -1):
                    result.below_stored.append(
                        f"batch {entry.get('batch')} applied {topic}/{partition} offset "
                        f"{offset}, below the recorded position {stored_now[(topic, partition)]}"
                    )
        elif kind == "skip":
            result.skipped_batches += 1
        result.skipped_records += int((entry.get("summary") or {}).get("skipped_replayed", 0))
        for t, partition, first, nxt in _spans(entry):
            covered[(t, partition)].append((first, nxt))
    for (t, partition), spans in sorted(covered.items()):
        spans.sort()
        reach = spans[0][1] if spans else 0
        for first, nxt in spans[1:]:
            if first > reach:
                result.gaps.append(f"{t}/{partition} offsets {reach}..{first - 1}")
            reach = max(reach, nxt)
    result.duplicated_offsets = sorted(k for k, n in applied.items() if n > 1)
    return result


def applied_events(
    entries: Sequence[Mapping[str, Any]], *, exclude_ops: Iterable[str] = ()
) -> list[ChangeEvent]:
    """The change events of every ``commit`` line in offset order, as ChangeEvents whose
    ``observed_ts`` is the moment their commit became visible (``visible_at``)."""
    excluded = set(exclude_ops)
    events: list[tuple[tuple[int, int], ChangeEvent]] = []
    for entry in entries:
        if entry.get("kind") != "commit":
            continue
        for partition, offset, op, key, commit_ts in entry.get("events") or []:
            if op in excluded:
                continue
            event = ChangeEvent(
                op=op,
                key=tuple(key),
                before=None,
                after=None,
                source={"topic": entry.get("topic"), "partition": partition, "offset": offset},
                commit_ts=commit_ts,
                observed_ts=entry.get("visible_at"),
            )
            events.append(((partition, offset), event))
    events.sort(key=lambda item: item[0])
    return [e for _, e in events]


def lag_samples(
    entries: Sequence[Mapping[str, Any]], *, exclude_ops: Iterable[str] = ("r",)
) -> list[float]:
    """Source commit -> visible in the table, per applied event (snapshot reads excluded)."""
    return [
        e.observed_ts - e.commit_ts
        for e in applied_events(entries, exclude_ops=exclude_ops)
        if e.observed_ts is not None and e.commit_ts is not None
    ]


def commit_latencies(entries: Sequence[Mapping[str, Any]]) -> list[float]:
    """Seconds of each table commit, in order."""
    return [float(e["seconds"]) for e in entries if e.get("kind") == "commit"]


def by_kind(entries: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """How many lines of each kind."""
    counts: dict[str, int] = defaultdict(int)
    for entry in entries:
        counts[str(entry.get("kind"))] += 1
    return dict(counts)
