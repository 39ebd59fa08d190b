"""Report attachments shared by the Iceberg step modules (no steps here)."""

from __future__ import annotations

from collections.abc import Iterable

from cdc_support.iceberg import Changelog, event_rows, snapshot_info
from cdc_support.iceberg.generated import GeneratedIcebergTable, IcebergWrite
from pytest_cdc.report import evidence


def attach_writes(iceberg: GeneratedIcebergTable, writes: Iterable[IcebergWrite]) -> None:
    """Per write: its snapshot summaries and the changes it should have made."""
    for write in writes:
        evidence.attach_json(f"write: {write.description}", iceberg.write_report(write))


def attach_changelog(iceberg: GeneratedIcebergTable, log: Changelog, title: str) -> None:
    """Snapshot summaries (JSON), data files added/removed and change rows (HTML tables)."""
    evidence.attach_json(
        f"snapshot summaries: {title}",
        [snapshot_info(iceberg.table, s) for s in log.snapshot_ids],
    )
    evidence.attach_json(f"diffs: {title}", [d.as_dict() for d in log.diffs])
    evidence.attach_html(
        f"data files added and removed: {title}",
        evidence.table_html(f"{title}: data files", [f.as_row() for f in log.files]),
    )
    evidence.attach_html(
        f"change rows: {title}",
        evidence.table_html(f"{title}: derived changes", event_rows(log.events)),
    )
