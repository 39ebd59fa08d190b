"""Why a changelog cannot be derived: each error names the snapshot and the fix."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

__all__ = [
    "DeleteFilesError",
    "IcebergChangelogError",
    "SnapshotExpiredError",
    "SnapshotLineageError",
]


class IcebergChangelogError(Exception):
    """A changelog cannot be derived; the message names the snapshot and the fix."""


class SnapshotExpiredError(IcebergChangelogError):
    """A snapshot the changelog needs is no longer in the table's metadata (expired)."""

    def __init__(self, table: str, snapshot_id: int, message: str) -> None:
        self.table = table
        self.snapshot_id = snapshot_id
        super().__init__(message)


class SnapshotLineageError(IcebergChangelogError):
    """The start snapshot is not an ancestor of the end snapshot (rollback, other branch)."""

    def __init__(self, table: str, snapshot_id: int, message: str) -> None:
        self.table = table
        self.snapshot_id = snapshot_id
        super().__init__(message)


class DeleteFilesError(IcebergChangelogError):
    """A snapshot carries delete files (merge-on-read), which a data-file diff cannot see."""

    def __init__(self, table: str, snapshot_id: int, delete_files: Sequence[str]) -> None:
        self.table = table
        self.snapshot_id = snapshot_id
        self.delete_files = list(delete_files)
        shown = ", ".join(Path(p).name for p in self.delete_files[:3])
        more = f" and {len(self.delete_files) - 3} more" if len(self.delete_files) > 3 else ""
        super().__init__(
            f"snapshot {snapshot_id} of {table} carries {len(self.delete_files)} delete file(s) "
            f"({shown}{more}): rows were deleted merge-on-read (position or equality deletes, "
            "written by an engine such as Spark, Flink or Trino; pyiceberg itself only writes "
            "copy-on-write). A diff of data files cannot see those deletes. Fix: compact the "
            "table so the deletes are applied to the data files and no delete file is left "
            "(Spark: CALL system.rewrite_data_files(table => '...', options => "
            "map('delete-file-threshold', '1', 'remove-dangling-deletes', 'true'))) and set "
            "write.delete.mode, write.update.mode and write.merge.mode to copy-on-write for the "
            "writers; or read this range with Spark's "
            "create_changelog_view, which applies delete files. A consumer whose checkpoint is "
            "such a snapshot starts over from the compacted snapshot with "
            "SnapshotConsumer.bootstrap() (a scan applies delete files)."
        )
