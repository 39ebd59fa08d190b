"""The diff of two snapshots: removed and added rows joined on the key into change events.

Rows of data files live only in the older snapshot are *before* candidates, rows of files
live only in the newer one are *after* candidates. Joined on the identifier fields: after only
-> insert ``c``, before only -> delete ``d``, both and different -> update ``u`` with both
images, both and identical -> a row carried over by a copy-on-write rewrite, dropped.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.table import Table
from pyiceberg.table.snapshots import Operation

from cdc_support.checks.integrity import canonical_row
from cdc_support.events import ChangeEvent
from cdc_support.iceberg.errors import IcebergChangelogError
from cdc_support.iceberg.files import (
    FileChange,
    check_delete_files,
    file_change,
    file_diff,
    read_files,
)
from cdc_support.iceberg.snapshots import (
    event_source,
    expired_error,
    lineage,
    operation_of,
    table_name,
)
from cdc_support.iceberg.tables import Key, Row, identifier_columns

__all__ = ["SnapshotDiff", "diff_snapshots", "join_rows", "same_row", "sorted_items"]


def _unique_keys(rows: pa.Table, key: Sequence[str]) -> bool:
    if len(key) == 1:
        return pc.count_distinct(rows[key[0]], mode="all").as_py() == rows.num_rows
    return rows.group_by(list(key)).aggregate([]).num_rows == rows.num_rows


def _drop_carried_over(
    before: pa.Table | None, after: pa.Table | None, key: Sequence[str]
) -> tuple[list[Row], list[Row], int]:
    """Rows of both sides minus identical (key, values) pairs, found column-wise in Arrow.

    Copy-on-write rewrites make carried-over rows the bulk of a diff, so they are dropped
    before any row becomes a Python dict. Tables with nested columns or non-unique keys
    skip this step (the row-by-row join handles them); so do values Arrow does not see as
    equal (NaN), which the row join compares canonically.
    """
    if before is None or after is None or before.num_rows == 0 or after.num_rows == 0:
        return (
            before.to_pylist() if before is not None else [],
            after.to_pylist() if after is not None else [],
            0,
        )
    nested = any(pa.types.is_nested(f.type) for f in before.schema)
    if nested or not (_unique_keys(before, key) and _unique_keys(after, key)):
        return before.to_pylist(), after.to_pylist(), 0
    left = before.select(list(key)).append_column("__b", pa.array(range(before.num_rows)))
    right = after.select(list(key)).append_column("__a", pa.array(range(after.num_rows)))
    pairs = left.join(right, keys=list(key), join_type="inner")
    b_idx, a_idx = pairs["__b"], pairs["__a"]
    same = pa.array([True] * pairs.num_rows, type=pa.bool_())
    for name in before.column_names:
        if name in key:
            continue
        old = before[name].take(b_idx)
        new = after[name].take(a_idx)
        equal = pc.fill_null(pc.equal(old, new), False)
        both_null = pc.and_(pc.is_null(old), pc.is_null(new))
        same = pc.and_(same, pc.or_(equal, both_null))
    carried_b = pc.filter(b_idx, same)
    carried_a = pc.filter(a_idx, same)
    keep_b = pc.invert(pc.is_in(pa.array(range(before.num_rows)), value_set=carried_b))
    keep_a = pc.invert(pc.is_in(pa.array(range(after.num_rows)), value_set=carried_a))
    return (
        before.filter(keep_b).to_pylist(),
        after.filter(keep_a).to_pylist(),
        len(carried_b),
    )


@dataclass
class SnapshotDiff:
    """The changes between two snapshots of one table, derived from their data files."""

    table: str
    from_snapshot_id: int | None
    to_snapshot_id: int
    snapshot_ids: list[int]
    operations: list[str]
    removed_files: list[FileChange]
    added_files: list[FileChange]
    events: list[ChangeEvent]
    carried_over: int
    rows_read: int
    seconds: float
    via: Literal["file diff", "incremental_append_scan"]

    def counts(self) -> dict[str, int]:
        """Events by op (c, u, d), always with all three keys."""
        tally = {"c": 0, "u": 0, "d": 0}
        for event in self.events:
            tally[event.op] = tally.get(event.op, 0) + 1
        return tally

    def as_dict(self) -> dict[str, Any]:
        """Range, files, counts and timing as a JSON-friendly dict (no rows)."""
        return {
            "table": self.table,
            "from_snapshot_id": self.from_snapshot_id,
            "to_snapshot_id": self.to_snapshot_id,
            "snapshots": self.snapshot_ids,
            "operations": self.operations,
            "files_removed": len(self.removed_files),
            "files_added": len(self.added_files),
            "rows_read": self.rows_read,
            "carried_over_rows": self.carried_over,
            "events": self.counts(),
            "seconds": round(self.seconds, 6),
            "via": self.via,
        }


def same_row(a: Row, b: Row) -> bool:
    """Equal rows, also when only their canonical forms agree (NaN, Decimal scale, ...)."""
    return a == b or canonical_row(a) == canonical_row(b)


def _sort_key(item: tuple[Key, Any]) -> Any:
    return item[0]


def sorted_items(mapping: Mapping[Key, Any]) -> list[tuple[Key, Any]]:
    """Items sorted by key; keys that do not compare (None, mixed types) sort by repr."""
    try:
        return sorted(mapping.items(), key=_sort_key)
    except TypeError:
        return sorted(mapping.items(), key=lambda item: repr(item[0]))


def join_rows(
    before_rows: list[Row],
    after_rows: list[Row],
    key: Sequence[str],
    source: Row,
    commit_ts: float,
    observed_ts: float,
) -> tuple[list[ChangeEvent], int]:
    """Join removed and added rows on ``key``: events and the number of carried-over rows.

    When the identifier is not unique (Iceberg does not enforce it), rows of one key are
    first cancelled pairwise when identical; one left on each side is an update, anything
    else becomes deletes and inserts.
    """
    before: dict[Key, list[Row]] = {}
    after: dict[Key, list[Row]] = {}
    for row in before_rows:
        before.setdefault(tuple(row[c] for c in key), []).append(row)
    for row in after_rows:
        after.setdefault(tuple(row[c] for c in key), []).append(row)
    carried = 0
    changes: dict[Key, list[tuple[str, Row | None, Row | None]]] = {}
    for k in before.keys() | after.keys():
        olds = list(before.get(k, ()))
        news: list[Row] = []
        for row in after.get(k, ()):
            match = next((i for i, old in enumerate(olds) if same_row(old, row)), None)
            if match is None:
                news.append(row)
            else:
                olds.pop(match)
                carried += 1
        if len(olds) == 1 and len(news) == 1:
            changes[k] = [("u", olds[0], news[0])]
        elif olds or news:
            changes[k] = [("d", o, None) for o in olds] + [("c", None, n) for n in news]
    events = [
        ChangeEvent(op, k, b, a, source, commit_ts, observed_ts)  # type: ignore[arg-type]
        for k, items in sorted_items(changes)
        for op, b, a in items
    ]
    return events, carried


def diff_snapshots(
    table: Table,
    from_snapshot_id: int | None,
    to_snapshot_id: int | None = None,
    *,
    key: Sequence[str] | None = None,
    use_append_scan: bool = True,
) -> SnapshotDiff:
    """Net changes from ``from_snapshot_id`` (exclusive; None = empty table) to ``to`` (current).

    One event per key. Events carry the end snapshot in ``source`` (``from_snapshot_id``
    names the start) and its timestamp as ``commit_ts``. A range of appends only is read
    with pyiceberg's ``incremental_append_scan`` when ``use_append_scan``.
    """
    started = time.perf_counter()
    end = (
        table.current_snapshot() if to_snapshot_id is None else table.snapshot_by_id(to_snapshot_id)
    )
    if end is None:
        if to_snapshot_id is not None:
            raise expired_error(table, to_snapshot_id, from_snapshot_id)
        raise IcebergChangelogError(
            f"table {table_name(table)} has no snapshot yet: nothing to diff"
        )
    cols = identifier_columns(table, key)
    chain = lineage(table, from_snapshot_id, end, full=False)
    start = table.snapshot_by_id(from_snapshot_id) if from_snapshot_id is not None else None
    check_delete_files(table, start)
    check_delete_files(table, end)
    operations = [operation_of(s) or "?" for s in chain]
    removed, added = file_diff(table, start, end)
    schema = table.schemas()[end.schema_id] if end.schema_id is not None else table.schema()
    append_only = bool(chain) and all(op == Operation.APPEND.value for op in operations)
    if use_append_scan and append_only and start is not None and not removed:
        via: Literal["file diff", "incremental_append_scan"] = "incremental_append_scan"
        before_table = None
        after_table = table.incremental_append_scan(
            from_snapshot_id_exclusive=start.snapshot_id, to_snapshot_id_inclusive=end.snapshot_id
        ).to_arrow()
    else:
        via = "file diff"
        before_table = read_files(table, [f for f, _ in removed], schema)
        after_table = read_files(table, [f for f, _ in added], schema)
    rows_read = sum(t.num_rows for t in (before_table, after_table) if t is not None)
    before_rows, after_rows, carried_arrow = _drop_carried_over(before_table, after_table, cols)
    operation = operations[-1] if len(chain) == 1 else "net"
    source = event_source(table, end, from_snapshot_id, operation)
    source["snapshot_count"] = len(chain)
    events, carried = join_rows(
        before_rows, after_rows, cols, source, end.timestamp_ms / 1000, time.time()
    )
    return SnapshotDiff(
        table=table_name(table),
        from_snapshot_id=from_snapshot_id,
        to_snapshot_id=end.snapshot_id,
        snapshot_ids=[s.snapshot_id for s in chain],
        operations=operations,
        removed_files=[file_change("removed", f) for f in removed],
        added_files=[file_change("added", f) for f in added],
        events=events,
        carried_over=carried_arrow + carried,
        rows_read=rows_read,
        seconds=time.perf_counter() - started,
        via=via,
    )
