"""Changelogs of a snapshot range: net (one change per key) or snapshot by snapshot.

Net mode diffs the two ends of the range directly, whatever happened in between. Per-snapshot
mode diffs each snapshot against its parent, so a key changed twice shows up twice (and a
pyiceberg upsert, an overwrite followed by one or two appends, shows an updated key as a ``d``
then a ``c``); :func:`collapse_to_net` folds such events back into net changes.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pyiceberg.table import Table

from cdc_support.events import ChangeEvent, jsonable
from cdc_support.iceberg.diff import SnapshotDiff, diff_snapshots, same_row, sorted_items
from cdc_support.iceberg.files import FileChange
from cdc_support.iceberg.snapshots import (
    event_source,
    expired_error,
    lineage,
    operation_of,
    table_name,
)
from cdc_support.iceberg.tables import Key, identifier_columns, read_snapshot, rows_by_key

__all__ = ["Changelog", "changes_between", "collapse_to_net", "event_rows", "snapshot_events"]


@dataclass
class Changelog:
    """Changes of a snapshot range: one net diff, or one diff per snapshot."""

    table: str
    from_snapshot_id: int | None
    to_snapshot_id: int | None
    net_changes: bool
    diffs: list[SnapshotDiff] = field(default_factory=list)

    @property
    def events(self) -> list[ChangeEvent]:
        """All events, snapshot by snapshot (per-snapshot mode) and by key within one."""
        return [e for d in self.diffs for e in d.events]

    @property
    def snapshot_ids(self) -> list[int]:
        """The snapshots of the range, oldest first."""
        return [s for d in self.diffs for s in d.snapshot_ids]

    def counts(self) -> dict[str, int]:
        """Events by op (c, u, d) over the whole range."""
        tally = {"c": 0, "u": 0, "d": 0}
        for diff in self.diffs:
            for op, n in diff.counts().items():
                tally[op] = tally.get(op, 0) + n
        return tally

    @property
    def files(self) -> list[FileChange]:
        """Removed and added data files of every diff."""
        return [f for d in self.diffs for f in (*d.removed_files, *d.added_files)]

    def __repr__(self) -> str:
        mode = "net" if self.net_changes else "per snapshot"
        return (
            f"Changelog({self.table} {self.from_snapshot_id}->{self.to_snapshot_id}, {mode}, "
            f"{len(self.events)} events)"
        )


def changes_between(
    table: Table,
    from_snapshot_id: int | None,
    to_snapshot_id: int | None = None,
    *,
    net_changes: bool = True,
    key: Sequence[str] | None = None,
) -> Changelog:
    """Changes after ``from_snapshot_id`` (exclusive; None = table creation) up to ``to``.

    ``net_changes=True``: one diff over the range, one event per changed key.
    ``net_changes=False``: one diff per snapshot against its parent, oldest first; every
    snapshot of the range must still exist.
    """
    end = (
        table.current_snapshot() if to_snapshot_id is None else table.snapshot_by_id(to_snapshot_id)
    )
    if end is None:
        if to_snapshot_id is not None:
            raise expired_error(table, to_snapshot_id, from_snapshot_id)
        return Changelog(table_name(table), from_snapshot_id, None, net_changes)
    log = Changelog(table_name(table), from_snapshot_id, end.snapshot_id, net_changes)
    if from_snapshot_id == end.snapshot_id:
        return log
    if net_changes:
        log.diffs.append(diff_snapshots(table, from_snapshot_id, end.snapshot_id, key=key))
        return log
    for snap in lineage(table, from_snapshot_id, end, full=True):
        log.diffs.append(diff_snapshots(table, snap.parent_snapshot_id, snap.snapshot_id, key=key))
    return log


def collapse_to_net(events: Iterable[ChangeEvent]) -> list[ChangeEvent]:
    """Fold events (in commit order) into one net change per key, sorted by key.

    The first event's ``before`` and the last event's ``after`` decide: nothing -> nothing
    (inserted then deleted), no before -> ``c``, no after -> ``d``, both -> ``u`` unless they
    are equal. Source and timestamps come from the key's last event.
    """
    first: dict[Key, ChangeEvent] = {}
    last: dict[Key, ChangeEvent] = {}
    for event in events:
        first.setdefault(event.key, event)
        last[event.key] = event
    net: dict[Key, ChangeEvent] = {}
    for k, head in first.items():
        tail = last[k]
        before = head.before if head.op in ("u", "d") else None
        after = tail.after if tail.op != "d" else None
        if before is None and after is None:
            continue
        if before is not None and after is not None and same_row(before, after):
            continue
        op = "c" if before is None else "d" if after is None else "u"
        net[k] = ChangeEvent(op, k, before, after, tail.source, tail.commit_ts, tail.observed_ts)
    return [event for _, event in sorted_items(net)]


def event_rows(events: Iterable[ChangeEvent]) -> list[dict[str, Any]]:
    """Report rows: op, key, snapshot and, per column, the value or ``old → new``."""
    rows = []
    for event in events:
        columns = list(event.after or event.before or {})
        row: dict[str, Any] = {
            "op": event.op,
            "key": ", ".join(str(v) for v in event.key),
            "snapshot": event.source.get("snapshot_id"),
        }
        for column in columns:
            old = (event.before or {}).get(column)
            new = (event.after or {}).get(column)
            if event.op == "u" and not same_row({column: old}, {column: new}):
                row[column] = f"{jsonable(old)} → {jsonable(new)}"
            else:
                row[column] = jsonable(new if event.op != "d" else old)
        rows.append(row)
    return rows


def snapshot_events(
    table: Table, snapshot_id: int | None = None, *, key: Sequence[str] | None = None
) -> list[ChangeEvent]:
    """Every row of a snapshot as a read event (``op="r"``): the bootstrap of a consumer."""
    snap = table.current_snapshot() if snapshot_id is None else table.snapshot_by_id(snapshot_id)
    if snap is None:
        if snapshot_id is not None:
            raise expired_error(table, snapshot_id, None)
        return []
    cols = identifier_columns(table, key)
    observed = time.time()
    source = event_source(table, snap, None, operation_of(snap))
    return [
        ChangeEvent("r", k, None, row, source, snap.timestamp_ms / 1000, observed)
        for k, row in sorted_items(rows_by_key(read_snapshot(table, snap.snapshot_id), cols))
    ]
