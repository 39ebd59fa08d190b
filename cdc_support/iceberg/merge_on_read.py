"""A merge-on-read delete as another engine writes it, made with pyiceberg's own writers.

Spark, Flink or Trino with ``write.delete.mode=merge-on-read`` delete rows of a format-v2 table
without rewriting data files: they write a *position delete file* (data file path + row
position of each deleted row), list it in a delete manifest and commit a ``delete`` snapshot.
Readers apply it. pyiceberg 0.12 writes copy-on-write only, so :func:`commit_position_deletes`
builds that state from pyiceberg's low-level writers (Parquet file with the reserved field ids,
manifest, manifest list, catalog commit). It exists to show and test what a snapshot-diff
changelog does with such snapshots (it refuses them, see
:class:`~cdc_support.iceberg.errors.DeleteFilesError`).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from pyiceberg.manifest import (
    DataFile,
    DataFileContent,
    FileFormat,
    ManifestContent,
    ManifestEntry,
    ManifestEntryStatus,
    ManifestWriterV2,
    write_manifest_list,
)
from pyiceberg.table import Table
from pyiceberg.table.refs import MAIN_BRANCH, SnapshotRefType
from pyiceberg.table.snapshots import Operation, Snapshot, Summary
from pyiceberg.table.update import AddSnapshotUpdate, AssertRefSnapshotId, SetSnapshotRefUpdate
from pyiceberg.typedef import Record

__all__ = ["commit_position_deletes", "row_positions"]

# reserved field ids of a position delete file (Iceberg spec, "Position Delete Files")
_FILE_PATH_ID = "2147483546"
_POS_ID = "2147483545"


class _DeleteManifestWriter(ManifestWriterV2):
    """pyiceberg 0.12 writes data manifests only; a delete manifest differs by its content."""

    def content(self) -> ManifestContent:
        return ManifestContent.DELETES

    @property
    def _meta(self) -> dict[str, str]:
        return {**super()._meta, "content": "deletes"}


def row_positions(table: Table, column: str, values: Collection[Any]) -> dict[str, list[int]]:
    """Data file path -> positions of the current rows whose ``column`` is in ``values``."""
    found: dict[str, list[int]] = {}
    for task in table.scan().plan_files():
        if task.delete_files:
            raise ValueError(
                f"{task.file.file_path} already has delete files; positions would be ambiguous"
            )
        with table.io.new_input(task.file.file_path).open() as stream:
            data = pq.read_table(stream, columns=[column])
        positions = [i for i, v in enumerate(data[column].to_pylist()) if v in values]
        if positions:
            found[task.file.file_path] = positions
    return found


def commit_position_deletes(table: Table, positions: Mapping[str, Sequence[int]]) -> int:
    """Delete rows merge-on-read (data file path -> row positions); the new snapshot's id.

    Writes one position delete file, a delete manifest listing it, a manifest list with the
    parent's manifests plus that one, and commits a ``delete`` snapshot as the head of main
    (failing if another writer committed meanwhile). ``table`` is refreshed afterwards.
    """
    parent = table.current_snapshot()
    if parent is None or not positions:
        raise ValueError("need a table with a snapshot and at least one row position to delete")
    pairs = sorted((path, pos) for path, rows in positions.items() for pos in rows)
    snapshot_id = uuid.uuid4().int >> 65
    location = table.location()
    delete_path = f"{location}/data/pos-delete-{uuid.uuid4()}.parquet"
    schema = pa.schema(
        [
            pa.field("file_path", pa.string(), False, {"PARQUET:field_id": _FILE_PATH_ID}),
            pa.field("pos", pa.int64(), False, {"PARQUET:field_id": _POS_ID}),
        ]
    )
    rows = pa.table({"file_path": [p for p, _ in pairs], "pos": [n for _, n in pairs]}, schema)
    with table.io.new_output(delete_path).create() as stream:
        pq.write_table(rows, stream)
    delete_file = DataFile.from_args(
        _table_format_version=2,
        content=DataFileContent.POSITION_DELETES,
        file_path=delete_path,
        file_format=FileFormat.PARQUET,
        partition=Record(),
        record_count=len(pairs),
        file_size_in_bytes=len(table.io.new_input(delete_path)),
    )
    delete_file.spec_id = table.spec().spec_id
    manifest_path = f"{location}/metadata/{uuid.uuid4()}-m0.avro"
    with _DeleteManifestWriter(
        table.spec(), table.schema(), table.io.new_output(manifest_path), snapshot_id, "deflate"
    ) as writer:
        writer.add(
            ManifestEntry.from_args(
                status=ManifestEntryStatus.ADDED, snapshot_id=snapshot_id, data_file=delete_file
            )
        )
    sequence = table.metadata.next_sequence_number()
    list_path = f"{location}/metadata/snap-{snapshot_id}-{uuid.uuid4()}.avro"
    with write_manifest_list(
        2, table.io.new_output(list_path), snapshot_id, parent.snapshot_id, sequence, "deflate"
    ) as manifest_list:
        manifest_list.add_manifests([writer.to_manifest_file(), *parent.manifests(table.io)])
    summary = Summary(
        Operation.DELETE,
        **{
            "added-delete-files": "1",
            "added-position-delete-files": "1",
            "added-position-deletes": str(len(pairs)),
        },
    )
    snapshot = Snapshot(
        snapshot_id=snapshot_id,
        parent_snapshot_id=parent.snapshot_id,
        sequence_number=sequence,
        manifest_list=list_path,
        summary=summary,
        schema_id=table.schema().schema_id,
    )
    table.catalog.commit_table(
        table,
        (AssertRefSnapshotId(snapshot_id=parent.snapshot_id, ref=MAIN_BRANCH),),
        (
            AddSnapshotUpdate(snapshot=snapshot),
            SetSnapshotRefUpdate(
                snapshot_id=snapshot_id,
                parent_snapshot_id=parent.snapshot_id,
                ref_name=MAIN_BRANCH,
                type=SnapshotRefType.BRANCH,
            ),
        ),
    )
    table.refresh()
    return snapshot_id
