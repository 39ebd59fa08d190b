"""Snapshots of a table: summaries, event sources, and the lineage between two snapshots.

A changelog needs both ends of its range and, snapshot by snapshot, every snapshot between
them. Expired snapshots and starts that are not ancestors of the end (a rollback, another
branch) are refused with :class:`~cdc_support.iceberg.errors.SnapshotExpiredError` and
:class:`~cdc_support.iceberg.errors.SnapshotLineageError`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pyiceberg.avro.file import AvroFile
from pyiceberg.manifest import ManifestFile
from pyiceberg.table import Table
from pyiceberg.table.snapshots import Snapshot

from cdc_support.iceberg.errors import SnapshotExpiredError, SnapshotLineageError

__all__ = [
    "event_source",
    "expired_error",
    "iso_ms",
    "lineage",
    "operation_of",
    "recorded_parent",
    "snapshot_info",
    "table_name",
]


def table_name(table: Table) -> str:
    """``namespace.table`` of a pyiceberg table."""
    return ".".join(table.name())


def iso_ms(ms: int) -> str:
    """Epoch milliseconds as an ISO 8601 UTC timestamp."""
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).isoformat(timespec="milliseconds")


def operation_of(snapshot: Snapshot) -> str | None:
    """The snapshot's operation (append, overwrite, delete, replace), None if unrecorded."""
    return snapshot.summary.operation.value if snapshot.summary else None


def snapshot_info(table: Table, snapshot: Snapshot | int) -> dict[str, Any]:
    """A JSON-friendly summary of one snapshot (id, parent, operation, summary counters)."""
    if isinstance(snapshot, int):
        found = table.metadata.snapshot_by_id(snapshot)
        if found is None:
            raise expired_error(table, snapshot, None)
        snapshot = found
    summary = snapshot.summary
    return {
        "snapshot_id": snapshot.snapshot_id,
        "parent_snapshot_id": snapshot.parent_snapshot_id,
        "sequence_number": snapshot.sequence_number,
        "timestamp": iso_ms(snapshot.timestamp_ms),
        "operation": operation_of(snapshot),
        "summary": dict(summary.additional_properties) if summary else {},
    }


def event_source(
    table: Table, snapshot: Snapshot, from_id: int | None, operation: str | None
) -> dict[str, Any]:
    """The ``source`` of a change event derived at ``snapshot`` (range start ``from_id``)."""
    return {
        "table": table_name(table),
        "snapshot_id": snapshot.snapshot_id,
        "from_snapshot_id": from_id,
        "sequence_number": snapshot.sequence_number,
        "operation": operation,
    }


def expired_error(table: Table, snapshot_id: int, other: int | None) -> SnapshotExpiredError:
    """The error for a snapshot missing from the metadata, naming the oldest one kept."""
    meta = table.metadata
    is_parent = any(s.parent_snapshot_id == snapshot_id for s in meta.snapshots)
    oldest = min(meta.snapshots, key=lambda s: s.sequence_number, default=None)
    how = (
        "was expired (a remaining snapshot still names it as parent)"
        if is_parent
        else "is not in the table's metadata: it was expired, or never belonged to this table"
    )
    towards = f" and snapshot {other}" if other is not None else ""
    oldest_text = (
        f"the oldest snapshot still kept is {oldest.snapshot_id} ({iso_ms(oldest.timestamp_ms)})"
        if oldest
        else "the table has no snapshot"
    )
    return SnapshotExpiredError(
        table_name(table),
        snapshot_id,
        f"snapshot {snapshot_id} of {table_name(table)} {how}, so the changes between "
        f"it{towards} cannot be derived; {oldest_text}. Fix: re-bootstrap the consumer from "
        "the current snapshot (SnapshotConsumer.bootstrap(): every current row as an 'r' "
        "event, then resume from there), and keep consumers within the table's snapshot "
        "retention (expire_snapshots older_than / history.expire.max-snapshot-age-ms).",
    )


def recorded_parent(table: Table, snapshot: Snapshot) -> int | None:
    """The snapshot's parent id, also when expiry cleared it from the table metadata.

    pyiceberg's expire_snapshots sets ``parent-snapshot-id`` to null on the children of the
    snapshots it removes, which makes an orphan look like the table's first snapshot. The
    manifest list written with the snapshot still records the parent in its Avro header.
    """
    if snapshot.parent_snapshot_id is not None:
        return snapshot.parent_snapshot_id
    with AvroFile[ManifestFile](table.io.new_input(snapshot.manifest_list)) as avro:
        recorded = avro.header.meta.get("parent-snapshot-id", "null")
    return None if recorded in ("null", "") else int(recorded)


def lineage(
    table: Table, from_id: int | None, to_snapshot: Snapshot, *, full: bool
) -> list[Snapshot]:
    """Snapshots after ``from_id`` up to ``to_snapshot``, oldest first.

    Raises when the start is expired or not an ancestor of the end. With ``full`` every
    snapshot of the range must still be in the metadata (per-snapshot changelogs); otherwise a
    range from the beginning (``from_id`` None) may start at the oldest kept snapshot.
    """
    meta = table.metadata
    name = table_name(table)
    if from_id is not None and meta.snapshot_by_id(from_id) is None:
        raise expired_error(table, from_id, to_snapshot.snapshot_id)
    chain: list[Snapshot] = []
    current: Snapshot | None = to_snapshot
    while current is not None and current.snapshot_id != from_id:
        chain.append(current)
        parent_id = recorded_parent(table, current)
        if parent_id is None:
            current = None
            break
        current = meta.snapshot_by_id(parent_id)
        if current is None:
            if from_id is None and not full:
                break
            start_text = f"snapshot {from_id}" if from_id is not None else "table creation"
            raise SnapshotExpiredError(
                name,
                parent_id,
                f"snapshot {parent_id} of {name}, between {start_text} and snapshot "
                f"{to_snapshot.snapshot_id}, was expired, so the snapshots of that range cannot "
                "be walked (neither diffed one by one nor checked to descend from the start). "
                "Fix: re-bootstrap the consumer from the current snapshot "
                "(SnapshotConsumer.bootstrap()); expire only snapshots older than every "
                "consumer's checkpoint.",
            )
    if from_id is not None and current is None:
        raise SnapshotLineageError(
            name,
            from_id,
            f"snapshot {from_id} of {name} is not an ancestor of snapshot "
            f"{to_snapshot.snapshot_id}: the table was rolled back, or the snapshots are on "
            "different branches, so no changelog leads from one to the other. Fix: "
            "re-bootstrap the consumer from the current snapshot (SnapshotConsumer.bootstrap()).",
        )
    chain.reverse()
    return chain
