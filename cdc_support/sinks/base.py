"""What the worker asks of a table format: its columns, the position it recorded, one commit.

A :class:`TableSink` writes one micro-batch per table commit, and records in that same commit
how far into the topic it got, so the table itself says which records it holds. After a
restart the worker reads that position back (:meth:`TableSink.stored_positions`) and skips
every record below it: a record is applied once, whatever the consumer group had committed.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from cdc_support.sinks.columns import Column
from cdc_support.sinks.errors import SinkConfigError, SinkConflict, SinkError
from cdc_support.sinks.positions import Positions, TopicPartition

__all__ = [
    "MAINTENANCE_DEFAULTS",
    "CommitResult",
    "MaintenancePolicy",
    "SinkConfigError",
    "SinkConflict",
    "SinkError",
    "TableSink",
]

OFFSETS_PROPERTY = "cdc-spec.sink.offsets"
"""Next offset per topic partition, as JSON ``{"topic": {"0": 42}}``."""
BATCH_PROPERTY = "cdc-spec.sink.batch"
"""The batch a commit applied: number and offset ranges, as JSON."""
WRITER_PROPERTY = "cdc-spec.sink.writer"
"""The worker that owns an Iceberg table (one writer per table)."""


@dataclass(frozen=True)
class MaintenancePolicy:
    """Table maintenance that keeps commit latency flat over a long run.

    Iceberg: every ``expire_every`` commits, snapshots but the newest ``keep_snapshots`` are
    expired (each commit copies the whole snapshot list, so a growing list slows every
    commit); when the current snapshot has more than ``compact_files`` data files the table is
    rewritten into as few files as it needs (every batch appends a small file). Delta: every
    ``optimize_every`` commits the table is compacted (OPTIMIZE); delta-rs writes a log
    checkpoint every 100 commits by itself. 0 turns a rule off.
    """

    expire_every: int = 10
    keep_snapshots: int = 4
    compact_files: int = 16
    optimize_every: int = 50

    def __post_init__(self) -> None:
        for name in ("expire_every", "keep_snapshots", "compact_files", "optimize_every"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0 (0 turns it off), got {getattr(self, name)}")


MAINTENANCE_DEFAULTS = MaintenancePolicy()


@dataclass
class CommitResult:
    """One table commit: the version it made, how long it took, when it became visible."""

    version: int
    seconds: float
    visible_at: float
    detail: dict[str, Any] = field(default_factory=dict)


class TableSink(abc.ABC):
    """A table a worker applies micro-batches to (one writer per table)."""

    format: str
    seek_to_stored: bool
    """True: on assignment the consumer seeks to :meth:`stored_positions` (Iceberg); False:
    it starts from the group's committed offsets and replays are skipped (Delta)."""

    key: tuple[str, ...]

    def claim(self) -> None:  # noqa: B027 - optional hook
        """Take the table as its one writer (before the first write)."""

    @abc.abstractmethod
    def describe(self) -> str:
        """Where the table is, for logs."""

    @abc.abstractmethod
    def table_columns(self) -> dict[str, pa.DataType] | None:
        """Column name -> Arrow type of the table, or None while it does not exist."""

    @abc.abstractmethod
    def stored_positions(self, partitions: Sequence[TopicPartition]) -> Positions:
        """Next offset per partition that the table records as applied (empty if none)."""

    @abc.abstractmethod
    def ensure_columns(self, columns: Sequence[Column]) -> dict[str, Any]:
        """Create the table with ``columns``, or add those it lacks (older rows read null), or
        widen a column whose source type grew, where the format can (Iceberg)."""

    @abc.abstractmethod
    def write(
        self,
        upserts: Sequence[Mapping[str, Any]],
        deletes: Sequence[tuple[Any, ...]],
        ranges: Mapping[TopicPartition, Sequence[int]],
        batch: int,
    ) -> CommitResult:
        """Upsert and delete by key in one commit that also records ``ranges`` (first and
        next offset per partition)."""

    @abc.abstractmethod
    def maintain(self) -> list[dict[str, Any]]:
        """Run the maintenance the policy asks for after the latest commit; what was done."""

    @abc.abstractmethod
    def history(self, limit: int = 20) -> list[dict[str, Any]]:
        """The table's latest commits (newest first), JSON-friendly, for reports."""

    @abc.abstractmethod
    def read_all(self) -> list[dict[str, Any]]:
        """Every row of the table as it is now ([] while it does not exist)."""

    def native_types(self) -> dict[str, str]:
        """Column name -> its type as the table format names it ({} while no table exists)."""
        return {name: str(kind) for name, kind in (self.table_columns() or {}).items()}

    def read_rows(self) -> dict[tuple[Any, ...], dict[str, Any]]:
        """The table's current rows by key (see :func:`duplicate_keys` for keys held twice)."""
        return {tuple(r[k] for k in self.key): r for r in self.read_all()}

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release clients."""


def duplicate_keys(rows: Sequence[Mapping[str, Any]], key: Sequence[str]) -> list[tuple[Any, ...]]:
    """Keys held by more than one row (a sink must keep one row per key)."""
    seen: dict[tuple[Any, ...], int] = {}
    for row in rows:
        k = tuple(row[c] for c in key)
        seen[k] = seen.get(k, 0) + 1
    return sorted((k for k, n in seen.items() if n > 1), key=repr)


def key_dicts(key: Sequence[str], keys: Sequence[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """Key tuples as ``{column: value}`` rows."""
    return [dict(zip(key, values, strict=True)) for values in keys]


def ranges_json(ranges: Mapping[TopicPartition, Sequence[int]]) -> dict[str, dict[str, list[int]]]:
    """``{("t", 0): [5, 9]}`` -> ``{"t": {"0": [5, 9]}}``."""
    nested: dict[str, dict[str, list[int]]] = {}
    for (topic, partition), span in sorted(ranges.items()):
        nested.setdefault(topic, {})[str(partition)] = [int(span[0]), int(span[1])]
    return nested
