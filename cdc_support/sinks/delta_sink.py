"""Apply micro-batches to a Delta table with delta-rs: one MERGE per batch, exactly once.

Each batch is one ``MERGE`` keyed by the primary key: the latest event of each key becomes a
source row marked upsert or delete; matched rows are updated or deleted, unmatched upserts
inserted. The same commit carries one Delta *app transaction* (``txn`` action) per Kafka
partition in the batch: app id ``<app-id>:<topic>:<partition>``, version = the next offset
after the batch. Delta keeps the latest version per app id in the table state, so after a
crash the worker asks the table (``DeltaTable.transaction_version``) how far each partition
got. The worker resumes from the consumer group's committed offsets, which are committed
only after the table commit; records below the table's version are recognised as replays and
skipped, and a batch that holds nothing above it is skipped whole. The commit's custom
metadata also records the batch number and offset ranges (visible in ``history()``).

A column the table lacks is added before the batch (``alter.add_columns``): rows written
before read null. A column dropped at the source is kept, and rows written since read null in
it. delta-rs cannot widen a column's type: when the source's grows (``int`` -> ``bigint``) the
column keeps its type, and a value that does not fit goes to the dead-letter topic
(:mod:`~cdc_support.sinks.type_changes`).

Delta has no time and no uuid type: such columns are stored as int64 µs since midnight and
as strings (:func:`~cdc_support.sinks.format_types.storage_type`). A value Debezium marked
unavailable (an unchanged TOAST column) is not written: the MERGE keeps the target row's value
(``CASE WHEN <unavailable> THEN t.col ELSE s.col END``), and a new row reads null.

Every ``optimize_every`` commits the table is compacted (OPTIMIZE: MERGE rewrites the files it
touches and appends small ones).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, Transaction
from deltalake import Schema as DeltaSchema
from deltalake.exceptions import CommitFailedError, TableNotFoundError

from cdc_support.deltalake.feed import read_table
from cdc_support.deltalake.location import DeltaLocation
from cdc_support.sinks.base import (
    BATCH_PROPERTY,
    CommitResult,
    MaintenancePolicy,
    SinkConflict,
    TableSink,
    key_dicts,
    ranges_json,
)
from cdc_support.sinks.columns import Column
from cdc_support.sinks.format_types import storage_type
from cdc_support.sinks.positions import Positions, TopicPartition
from cdc_support.sinks.unavailable import UNAVAILABLE, has_unavailable, unavailable_columns

__all__ = ["OP_COLUMN", "DeltaSink", "app_id_for", "transactions_for"]

OP_COLUMN = "__cdc_sink_op"
KEEP_PREFIX = "__cdc_sink_keep_"
"""Source columns of a MERGE flagging a value to keep (one per column unavailable in a batch)."""


def app_id_for(app_id: str, topic: str, partition: int) -> str:
    """The Delta app transaction id of one topic partition."""
    return f"{app_id}:{topic}:{partition}"


def transactions_for(
    app_id: str, ranges: Mapping[TopicPartition, Sequence[int]]
) -> list[Transaction]:
    """One app transaction per partition: version = the next offset after the batch."""
    return [
        Transaction(app_id_for(app_id, topic, partition), int(span[1]))
        for (topic, partition), span in sorted(ranges.items())
    ]


def _quote(column: str) -> str:
    return '"' + column.replace('"', '""') + '"'


def _delta_type_name(kind: Any) -> str:
    """A Delta schema type (its JSON form) as Delta names it: ``decimal(38,10)``,
    ``array<string>``, ``map<string,long>``, ``struct<a:long>``."""
    if isinstance(kind, str):
        return kind
    if kind.get("type") == "array":
        return f"array<{_delta_type_name(kind['elementType'])}>"
    if kind.get("type") == "map":
        return f"map<{_delta_type_name(kind['keyType'])},{_delta_type_name(kind['valueType'])}>"
    fields = ",".join(f"{f['name']}:{_delta_type_name(f['type'])}" for f in kind.get("fields", []))
    return f"struct<{fields}>"


def _marked(row: Mapping[str, Any], keep: Mapping[str, str]) -> dict[str, Any]:
    """A MERGE source row: each unavailable value null, with its keep flag set."""
    if not keep:
        return dict(row)
    marked = {k: (None if v is UNAVAILABLE else v) for k, v in row.items()}
    for column, flag in keep.items():
        marked[flag] = row.get(column) is UNAVAILABLE
    return marked


def _update_expression(column: str, flag: str | None) -> str:
    """``s.col``, or the target's value where the source flags the value unavailable."""
    if flag is None:
        return f"s.{_quote(column)}"
    return f"CASE WHEN s.{_quote(flag)} THEN t.{_quote(column)} ELSE s.{_quote(column)} END"


class DeltaSink(TableSink):
    """MERGE micro-batches into the Delta table at ``location`` (created on first write)."""

    format = "delta"
    seek_to_stored = False

    def __init__(
        self,
        location: DeltaLocation,
        key: Sequence[str],
        *,
        app_id: str = "cdc-spec-sink",
        policy: MaintenancePolicy | None = None,
        table_properties: Mapping[str, str] | None = None,
    ) -> None:
        self.location = location
        self.key = tuple(key)
        self.app_id = app_id
        self.policy = policy or MaintenancePolicy()
        self.table_properties = dict(table_properties or {})
        self.commits = 0
        self._table: DeltaTable | None = self._open()

    def __repr__(self) -> str:
        return f"DeltaSink({self.location.uri})"

    def describe(self) -> str:
        return f"Delta table {self.location.uri}"

    def _open(self) -> DeltaTable | None:
        try:
            return DeltaTable(self.location.uri, storage_options=self.location.options())
        except TableNotFoundError:
            return None

    def _arrow_schema(self) -> pa.Schema:
        assert self._table is not None
        return pa.schema(self._table.schema().to_arrow())

    def table_columns(self) -> dict[str, pa.DataType] | None:
        if self._table is None:
            return None
        return {f.name: f.type for f in self._arrow_schema()}

    def native_types(self) -> dict[str, str]:
        if self._table is None:
            return {}
        fields = json.loads(self._table.schema().to_json())["fields"]
        return {f["name"]: _delta_type_name(f["type"]) for f in fields}

    def stored_positions(self, partitions: Sequence[TopicPartition]) -> Positions:
        if self._table is None:
            return {}
        self._table.update_incremental()
        positions: Positions = {}
        for topic, partition in partitions:
            version = self._table.transaction_version(app_id_for(self.app_id, topic, partition))
            if version is not None:
                positions[(topic, partition)] = int(version)
        return positions

    def ensure_columns(self, columns: Sequence[Column]) -> dict[str, Any]:
        if self._table is None:
            fields = [
                pa.field(
                    c.name, storage_type(c.arrow_type, self.format), nullable=c.name not in self.key
                )
                for c in columns
            ]
            missing = [k for k in self.key if k not in {c.name for c in columns}]
            if missing:
                raise ValueError(f"cannot create the table: key columns {missing} have no values")
            self._table = DeltaTable.create(
                self.location.uri,
                pa.schema(fields),
                configuration=self.table_properties or None,
                storage_options=self.location.options(),
            )
            return {"created": [f"{f.name} {f.type}" for f in fields]}
        existing = self.table_columns() or {}
        new = [c for c in columns if c.name not in existing]
        if not new:
            return {}
        fields = [pa.field(c.name, storage_type(c.arrow_type, self.format)) for c in new]
        delta_fields = DeltaSchema.from_arrow(pa.schema(fields)).fields
        self._table.alter.add_columns(list(delta_fields))
        return {"added": [f"{f.name} {f.type}" for f in fields]}

    def write(
        self,
        upserts: Sequence[Mapping[str, Any]],
        deletes: Sequence[tuple[Any, ...]],
        ranges: Mapping[TopicPartition, Sequence[int]],
        batch: int,
    ) -> CommitResult:
        if self._table is None:
            raise RuntimeError("write before the table exists: call ensure_columns first")
        schema = self._arrow_schema()
        columns = schema.names
        keep = {
            c: f"{KEEP_PREFIX}{i}"
            for i, c in enumerate(unavailable_columns(upserts))
            if c in columns and c not in self.key
        }
        source_schema = schema.append(pa.field(OP_COLUMN, pa.string()))
        for flag in keep.values():
            source_schema = source_schema.append(pa.field(flag, pa.bool_()))
        rows = [{**_marked(row, keep), OP_COLUMN: "u"} for row in upserts]
        rows += [{**k, OP_COLUMN: "d"} for k in key_dicts(self.key, deletes)]
        source = pa.Table.from_pylist(rows, schema=source_schema)
        properties = CommitProperties(
            app_transactions=transactions_for(self.app_id, ranges),
            custom_metadata={
                BATCH_PROPERTY: json.dumps({"batch": batch, "offsets": ranges_json(ranges)})
            },
        )
        on = " AND ".join(f"t.{_quote(k)} = s.{_quote(k)}" for k in self.key)
        op = f"s.{_quote(OP_COLUMN)}"
        started = time.perf_counter()
        merger = self._table.merge(
            source, on, source_alias="s", target_alias="t", commit_properties=properties
        ).when_matched_delete(predicate=f"{op} = 'd'")
        non_key = [c for c in columns if c not in self.key]
        if non_key:
            merger = merger.when_matched_update(
                updates={c: _update_expression(c, keep.get(c)) for c in non_key},
                predicate=f"{op} = 'u'",
            )
        merger = merger.when_not_matched_insert(
            updates={c: f"s.{_quote(c)}" for c in columns}, predicate=f"{op} = 'u'"
        )
        try:
            metrics = merger.execute()
        except CommitFailedError as exc:
            raise SinkConflict(
                f"{self.describe()}: the MERGE of batch {batch} conflicted with another "
                f"writer's commit ({exc}). One writer per table: stop the other writer."
            ) from exc
        seconds = time.perf_counter() - started
        self.commits += 1
        detail = {
            k: metrics.get(k)
            for k in (
                "num_target_rows_inserted",
                "num_target_rows_updated",
                "num_target_rows_deleted",
                "num_target_files_added",
                "num_target_files_removed",
            )
        }
        detail["unavailable_rows"] = sum(1 for row in upserts if has_unavailable(row))
        return CommitResult(self._table.version(), seconds, time.time(), detail)

    def maintain(self) -> list[dict[str, Any]]:
        every = self.policy.optimize_every
        if self._table is None or not every or self.commits % every:
            return []
        started = time.perf_counter()
        metrics = self._table.optimize.compact()
        return [
            {
                "kind": "optimize",
                "seconds": time.perf_counter() - started,
                "files_added": metrics.get("numFilesAdded"),
                "files_removed": metrics.get("numFilesRemoved"),
                "version": self._table.version(),
            }
        ]

    def history(self, limit: int = 20) -> list[dict[str, Any]]:
        table = self._open()
        if table is None:
            return []
        entries = []
        for item in table.history(limit):
            batch = item.get(BATCH_PROPERTY)
            entries.append(
                {
                    "version": item.get("version"),
                    "timestamp": item.get("timestamp"),
                    "operation": item.get("operation"),
                    "batch": json.loads(batch) if isinstance(batch, str) else batch,
                    "metrics": {
                        k: v
                        for k, v in (item.get("operationMetrics") or {}).items()
                        if k.startswith("num_target") or k.startswith("num")
                    },
                }
            )
        return entries

    def read_all(self) -> list[dict[str, Any]]:
        if self._open() is None:
            return []
        return read_table(self.location).to_pylist()
