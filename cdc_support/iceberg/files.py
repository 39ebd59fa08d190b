"""Data files of a snapshot range: which are live only at one end, and reading their rows.

A snapshot lists its live data files in manifests; a manifest is immutable and shared by later
snapshots as long as none of its files changes. A data file is live in exactly one manifest of
a snapshot, so files listed in a manifest both ends share cannot differ and are not read.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
from pyiceberg.expressions import AlwaysTrue
from pyiceberg.io.pyarrow import ArrowScan
from pyiceberg.manifest import DataFile, DataFileContent, ManifestContent, ManifestFile
from pyiceberg.schema import Schema
from pyiceberg.table import FileScanTask, Table
from pyiceberg.table.snapshots import Snapshot

from cdc_support.iceberg.errors import DeleteFilesError
from cdc_support.iceberg.snapshots import table_name

__all__ = [
    "FileChange",
    "LiveFile",
    "check_delete_files",
    "delete_files",
    "file_change",
    "file_diff",
    "read_files",
]

LiveFile = tuple[DataFile, int | None]
"""A live data file and the id of the snapshot that added it (None if not recorded)."""


@dataclass(frozen=True)
class FileChange:
    """A data file that is live at one end of a range only."""

    change: Literal["added", "removed"]
    path: str
    record_count: int
    file_size_in_bytes: int
    added_by_snapshot: int | None

    def as_row(self) -> dict[str, Any]:
        """One row for a report table (file name rather than the full path)."""
        return {
            "change": self.change,
            "file": Path(self.path).name,
            "records": self.record_count,
            "bytes": self.file_size_in_bytes,
            "added by snapshot": self.added_by_snapshot,
        }


def _manifests(table: Table, snapshot: Snapshot | None) -> dict[str, ManifestFile]:
    if snapshot is None:
        return {}
    return {m.manifest_path: m for m in snapshot.manifests(table.io)}


def delete_files(table: Table, snapshot: Snapshot) -> list[str]:
    """Paths of the live delete files (position or equality deletes) of ``snapshot``."""
    return [
        entry.data_file.file_path
        for manifest in snapshot.manifests(table.io)
        if manifest.content == ManifestContent.DELETES
        for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True)
        if entry.data_file.content != DataFileContent.DATA
    ]


def check_delete_files(table: Table, snapshot: Snapshot | None) -> None:
    """Raise :class:`DeleteFilesError` when ``snapshot`` carries delete files (merge-on-read)."""
    if snapshot is None:
        return
    paths = delete_files(table, snapshot)
    if paths:
        raise DeleteFilesError(table_name(table), snapshot.snapshot_id, paths)


def _live_data_files(table: Table, manifests: Iterable[ManifestFile]) -> dict[str, LiveFile]:
    files: dict[str, LiveFile] = {}
    for manifest in manifests:
        if manifest.content != ManifestContent.DATA:
            continue
        for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True):
            files[entry.data_file.file_path] = (entry.data_file, entry.snapshot_id)
    return files


def file_diff(
    table: Table, start: Snapshot | None, end: Snapshot
) -> tuple[list[LiveFile], list[LiveFile]]:
    """(removed, added) data files between two snapshots, by path; shared manifests unread.

    A data file is live in exactly one manifest of a snapshot, so a file listed in a manifest
    both snapshots share is live in both and cannot differ.
    """
    before = _manifests(table, start)
    after = _manifests(table, end)
    old = _live_data_files(table, (m for p, m in before.items() if p not in after))
    new = _live_data_files(table, (m for p, m in after.items() if p not in before))
    removed = [old[p] for p in sorted(old) if p not in new]
    added = [new[p] for p in sorted(new) if p not in old]
    return removed, added


def file_change(change: Literal["added", "removed"], live: LiveFile) -> FileChange:
    """The report record of one added or removed data file."""
    f, snapshot_id = live
    return FileChange(change, f.file_path, f.record_count, f.file_size_in_bytes, snapshot_id)


def read_files(table: Table, files: Sequence[DataFile], schema: Schema) -> pa.Table | None:
    """The rows of ``files`` read with ``schema`` (no delete files applied); None if no file."""
    if not files:
        return None
    scan = ArrowScan(
        table_metadata=table.metadata, io=table.io, projected_schema=schema, row_filter=AlwaysTrue()
    )
    return scan.to_table([FileScanTask(f) for f in files])
