"""Apply micro-batches to an Iceberg table with pyiceberg: delete + append per batch, exactly once.

Each batch is one transaction: the keys of the batch are deleted (a filter on the identifier
columns; pyiceberg rewrites the data files holding them, copy-on-write) and the latest row
of every key that was not deleted is appended. Iceberg does not enforce its identifier
fields, so deleting before appending is what keeps one row per key. The snapshots the
transaction commits carry the consumed offsets in their summary
(``cdc-spec.sink.offsets``: next offset per topic partition) and the batch
(``cdc-spec.sink.batch``). After a restart the worker seeks its consumer to the offsets of
the current snapshot: the table, not the consumer group, says where to go on.

One writer per table: on start the sink claims the table (table property
``cdc-spec.sink.writer``, and an empty snapshot carrying the recorded offsets) and turns
pyiceberg's automatic commit retries off. Every commit expects the snapshot the writer saw
last, so after another writer claimed the table or committed to it, the next commit fails
(:class:`~cdc_support.sinks.base.SinkConflict`, naming the new owner) instead of being
re-applied on top of the other writer's data.

A column whose source type grew is widened in place where Iceberg allows it (int -> long,
float -> double, a decimal's precision): the data files keep the narrower type, and readers
promote their values (:mod:`~cdc_support.sinks.type_changes`). A column dropped at the source
is kept, and rows written since read null in it.

A value Debezium marked unavailable (an unchanged TOAST column) is taken from the key's current
row before the delete + append (the current rows of those keys are read first); a key with no
current row reads null in that column.

Commit latency would grow with the run: every commit copies the table's snapshot list, and
every batch appends a small data file. The sink expires old snapshots every
``expire_every`` commits and rewrites the table into few files when it has more than
``compact_files`` (see :class:`~cdc_support.sinks.base.MaintenancePolicy`).
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
import warnings
from collections.abc import Mapping, Sequence
from functools import reduce
from pathlib import Path
from typing import Any

import pyarrow as pa
from pyiceberg.exceptions import CommitFailedException, NoSuchTableError
from pyiceberg.expressions import And, BooleanExpression, EqualTo, In, Or
from pyiceberg.table import Table

from cdc_support.iceberg.catalog import open_catalog
from cdc_support.iceberg.snapshots import snapshot_info
from cdc_support.sinks.base import (
    BATCH_PROPERTY,
    OFFSETS_PROPERTY,
    WRITER_PROPERTY,
    CommitResult,
    MaintenancePolicy,
    SinkConflict,
    TableSink,
    ranges_json,
)
from cdc_support.sinks.columns import Column
from cdc_support.sinks.format_types import storage_type
from cdc_support.sinks.positions import (
    Positions,
    TopicPartition,
    positions_from_json,
    positions_to_json,
)
from cdc_support.sinks.type_changes import grown
from cdc_support.sinks.unavailable import UNAVAILABLE, fill_unavailable, has_unavailable

__all__ = ["TABLE_DEFAULTS", "IcebergSink", "key_filter", "stored_offsets"]

TABLE_DEFAULTS = {
    "commit.retry.num-retries": "0",
    "write.metadata.delete-after-commit.enabled": "true",
    "write.metadata.previous-versions-max": "10",
}
"""Properties of a table the sink creates: no silent commit retries (one writer), and old
metadata files deleted as new ones are written."""


def key_filter(key: Sequence[str], keys: Sequence[tuple[Any, ...]]) -> BooleanExpression:
    """A row filter matching ``keys``: ``In`` for one key column, else an Or of Ands."""
    if len(key) == 1:
        return In(key[0], [k[0] for k in keys])
    terms = [reduce(And, [EqualTo(c, v) for c, v in zip(key, k, strict=True)]) for k in keys]
    return terms[0] if len(terms) == 1 else reduce(Or, terms)


def stored_offsets(table: Table) -> Positions:
    """The offsets recorded by the newest snapshot that has them (empty if none has)."""
    snapshots = sorted(table.snapshots(), key=lambda s: s.sequence_number, reverse=True)
    current = table.current_snapshot()
    if current is not None:
        snapshots.insert(0, current)
    for snapshot in snapshots:
        summary = snapshot.summary.additional_properties if snapshot.summary else {}
        if OFFSETS_PROPERTY in summary:
            return positions_from_json(summary[OFFSETS_PROPERTY])
    return {}


class IcebergSink(TableSink):
    """Delete + append micro-batches into ``namespace.table`` of a SQL catalog."""

    format = "iceberg"
    seek_to_stored = True

    def __init__(
        self,
        warehouse: str | os.PathLike[str],
        identifier: str,
        key: Sequence[str],
        *,
        catalog_uri: str | None = None,
        catalog_name: str = "cdc",
        policy: MaintenancePolicy | None = None,
        table_properties: Mapping[str, str] | None = None,
        writer_id: str | None = None,
    ) -> None:
        namespace, _, name = identifier.rpartition(".")
        if not namespace or not name:
            raise ValueError(f"Iceberg table must be 'namespace.table', got {identifier!r}")
        self.warehouse = Path(warehouse)
        self.identifier = identifier
        self.key = tuple(key)
        self.policy = policy or MaintenancePolicy()
        self.table_properties = {**TABLE_DEFAULTS, **dict(table_properties or {})}
        self.writer_id = writer_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.catalog = open_catalog(self.warehouse, uri=catalog_uri, name=catalog_name)
        self.commits = 0
        self._positions: Positions = {}
        self._table: Table | None = None
        try:
            self._table = self.catalog.load_table(identifier)
        except NoSuchTableError:
            self._table = None
        if self._table is not None:
            self._positions = stored_offsets(self._table)

    def __repr__(self) -> str:
        return f"IcebergSink({self.identifier} in {self.warehouse})"

    def describe(self) -> str:
        return f"Iceberg table {self.identifier} (warehouse {self.warehouse})"

    def claim(self) -> None:
        """Take the table as its one writer: record this worker in the table properties
        (with automatic commit retries off) and commit an empty snapshot carrying the
        recorded offsets. A writer that had the table before fails on its next commit, which
        expects the snapshot it wrote last. A no-op while the table does not exist (creating
        it claims it)."""
        if self._table is None:
            return
        table = self._table
        table.refresh()
        self._positions = stored_offsets(table)
        empty = pa.Table.from_pylist([], schema=table.schema().as_arrow())
        try:
            with table.transaction() as txn:
                txn.set_properties(
                    {WRITER_PROPERTY: self.writer_id, "commit.retry.num-retries": "0"}
                )
                txn.append(
                    empty,
                    snapshot_properties={
                        OFFSETS_PROPERTY: positions_to_json(self._positions),
                        WRITER_PROPERTY: self.writer_id,
                    },
                )
        except CommitFailedException as exc:
            raise self._conflict("claiming the table", exc) from exc

    def table_columns(self) -> dict[str, pa.DataType] | None:
        if self._table is None:
            return None
        return {f.name: f.type for f in self._table.schema().as_arrow()}

    def native_types(self) -> dict[str, str]:
        table = self._load()
        if table is None:
            return {}
        return {f.name: str(f.field_type) for f in table.schema().fields}

    def stored_positions(self, partitions: Sequence[TopicPartition]) -> Positions:
        if self._table is None:
            return {}
        self._table.refresh()
        self._positions = stored_offsets(self._table)
        return {tp: off for tp, off in self._positions.items() if tp in set(partitions)}

    def ensure_columns(self, columns: Sequence[Column]) -> dict[str, Any]:
        if self._table is None:
            missing = [k for k in self.key if k not in {c.name for c in columns}]
            if missing:
                raise ValueError(f"cannot create the table: key columns {missing} have no values")
            fields = [
                pa.field(
                    c.name, storage_type(c.arrow_type, self.format), nullable=c.name not in self.key
                )
                for c in columns
            ]
            namespace = self.identifier.rpartition(".")[0]
            self.catalog.create_namespace_if_not_exists(namespace)
            table = self.catalog.create_table(
                self.identifier,
                schema=pa.schema(fields),
                properties={**self.table_properties, WRITER_PROPERTY: self.writer_id},
            )
            with table.update_schema() as update:
                update.set_identifier_fields(*self.key)
            self._table = table
            return {"created": [f"{f.name} {f.type}" for f in fields]}
        existing = self.table_columns() or {}
        fields = [pa.field(c.name, storage_type(c.arrow_type, self.format)) for c in columns]
        new = [f for f in fields if f.name not in existing]
        wider = [f for f in fields if f.name in existing and grown(existing[f.name], f.type)]
        if not new and not wider:
            return {}
        before = self.native_types()
        try:
            with self._table.update_schema() as update:
                update.union_by_name(pa.schema(new + wider))  # adds, and promotes wider types
        except CommitFailedException as exc:
            raise self._conflict("changing columns", exc) from exc
        after = self.native_types()
        change: dict[str, Any] = {}
        if new:
            change["added"] = [f"{f.name} {after.get(f.name, f.type)}" for f in new]
        if wider:
            change["widened"] = [f"{f.name} {before[f.name]} -> {after[f.name]}" for f in wider]
        return change

    def _conflict(self, what: str, exc: Exception) -> SinkConflict:
        owner = "?"
        if self._table is not None:
            try:
                self._table.refresh()
                owner = self._table.properties.get(WRITER_PROPERTY, "nobody")
            except Exception as refresh_error:  # report the conflict even so
                owner = f"unknown ({refresh_error})"
        return SinkConflict(
            f"{self.describe()}: {what} failed because the table changed underneath "
            f"({exc}); it is now claimed by writer {owner!r}, this worker is "
            f"{self.writer_id!r}. One writer per table: stop the other writer, then restart "
            "this one (it resumes from the offsets the table recorded)."
        )

    def _properties(self, ranges: Mapping[TopicPartition, Sequence[int]], batch: int) -> dict:
        positions = dict(self._positions)
        positions.update({tp: int(span[1]) for tp, span in ranges.items()})
        return {
            OFFSETS_PROPERTY: positions_to_json(positions),
            BATCH_PROPERTY: json.dumps({"batch": batch, "offsets": ranges_json(ranges)}),
            WRITER_PROPERTY: self.writer_id,
        }

    def write(
        self,
        upserts: Sequence[Mapping[str, Any]],
        deletes: Sequence[tuple[Any, ...]],
        ranges: Mapping[TopicPartition, Sequence[int]],
        batch: int,
    ) -> CommitResult:
        if self._table is None:
            raise RuntimeError("write before the table exists: call ensure_columns first")
        table = self._table
        rows, unavailable = self._fill_unavailable(upserts)
        keys = [tuple(row[k] for k in self.key) for row in rows] + list(deletes)
        frame = pa.Table.from_pylist(rows, schema=table.schema().as_arrow())
        properties = self._properties(ranges, batch)
        before = len(table.snapshots())
        started = time.perf_counter()
        try:
            with warnings.catch_warnings():
                # "Delete operation did not match any records": a key new to the table
                warnings.simplefilter("ignore", UserWarning)
                with table.transaction() as txn:
                    txn.overwrite(
                        frame,
                        overwrite_filter=key_filter(self.key, keys),
                        snapshot_properties=properties,
                    )
        except CommitFailedException as exc:
            raise self._conflict(f"the commit of batch {batch}", exc) from exc
        seconds = time.perf_counter() - started
        self.commits += 1
        self._positions = positions_from_json(properties[OFFSETS_PROPERTY])
        snapshot = table.current_snapshot()
        assert snapshot is not None
        summary = snapshot.summary.additional_properties if snapshot.summary else {}
        detail = {
            "snapshots": len(table.snapshots()) - before,
            "total_records": summary.get("total-records"),
            "total_data_files": summary.get("total-data-files"),
            **unavailable,
        }
        return CommitResult(snapshot.snapshot_id, seconds, time.time(), detail)

    def _fill_unavailable(
        self, upserts: Sequence[Mapping[str, Any]]
    ) -> tuple[list[dict[str, Any]], dict[str, int]]:
        """Rows with each unavailable value taken from the key's current row (null when the
        key has none), and how many rows had one / had no current row."""
        rows = [dict(r) for r in upserts]
        pending = [r for r in rows if has_unavailable(r)]
        if not pending:
            return rows, {"unavailable_rows": 0}
        assert self._table is not None
        keys = [tuple(r[k] for k in self.key) for r in pending]
        scan = self._table.scan(row_filter=key_filter(self.key, keys))
        current = {tuple(r[k] for k in self.key): r for r in scan.to_arrow().to_pylist()}
        without = 0
        for row in pending:
            previous = current.get(tuple(row[k] for k in self.key))
            without += previous is None
            filled = fill_unavailable(row, previous or {})
            row.update({k: (None if v is UNAVAILABLE else v) for k, v in filled.items()})
        return rows, {"unavailable_rows": len(pending), "unavailable_without_row": without}

    def maintain(self) -> list[dict[str, Any]]:
        table = self._table
        if table is None or not self.commits:
            return []
        done: list[dict[str, Any]] = []
        policy = self.policy
        if policy.compact_files:
            snapshot = table.current_snapshot()
            summary = (
                snapshot.summary.additional_properties if snapshot and snapshot.summary else {}
            )
            files = int(summary.get("total-data-files", 0))
            if files > policy.compact_files:
                started = time.perf_counter()
                rows = table.scan().to_arrow()
                properties = {
                    OFFSETS_PROPERTY: positions_to_json(self._positions),
                    WRITER_PROPERTY: self.writer_id,
                }
                try:
                    with table.transaction() as txn:
                        txn.overwrite(rows, snapshot_properties=properties)
                except CommitFailedException as exc:
                    raise self._conflict("compaction", exc) from exc
                done.append(
                    {
                        "kind": "compact",
                        "seconds": time.perf_counter() - started,
                        "files_before": files,
                        "rows": rows.num_rows,
                    }
                )
        if policy.expire_every and self.commits % policy.expire_every == 0:
            snapshots = sorted(table.snapshots(), key=lambda s: s.sequence_number)
            keep = max(policy.keep_snapshots, 1)
            current = table.current_snapshot()
            old = [
                s.snapshot_id
                for s in snapshots[:-keep]
                if current is None or s.snapshot_id != current.snapshot_id
            ]
            if old:
                started = time.perf_counter()
                try:
                    table.maintenance.expire_snapshots().by_ids(old).commit()
                except CommitFailedException as exc:
                    raise self._conflict("snapshot expiry", exc) from exc
                done.append(
                    {
                        "kind": "expire_snapshots",
                        "seconds": time.perf_counter() - started,
                        "expired": len(old),
                        "kept": len(table.snapshots()),
                    }
                )
        return done

    def history(self, limit: int = 20) -> list[dict[str, Any]]:
        table = self._load()
        if table is None:
            return []
        snapshots = sorted(table.snapshots(), key=lambda s: s.sequence_number, reverse=True)
        return [snapshot_info(table, s) for s in snapshots[:limit]]

    def _load(self) -> Table | None:
        try:
            return self.catalog.load_table(self.identifier)
        except NoSuchTableError:
            return None

    def read_all(self) -> list[dict[str, Any]]:
        table = self._load()
        if table is None:
            return []
        return table.scan().to_arrow().to_pylist()

    def close(self) -> None:
        self.catalog.engine.dispose()
