"""Steps for features/iceberg/snapshot_cdc.feature: changes derived between two snapshots.

Each derived changelog is checked against what the writes should have changed, key by key
(:func:`cdc_support.iceberg.expected.mismatches`).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pytest_bdd import parsers, then

from cdc_support.checks.replay import rebuild_from_events
from cdc_support.iceberg import Changelog, DeleteFilesError, changes_between, snapshot_events
from cdc_support.iceberg.expected import mismatches, same_row
from cdc_support.iceberg.files import file_diff
from cdc_support.iceberg.generated import GeneratedIcebergTable
from pytest_cdc.report import evidence
from steps.common import assert_tables_equal
from steps.iceberg_attach import attach_changelog


def last_write_changes(iceberg: GeneratedIcebergTable, *, net: bool = True) -> Changelog:
    """The changes between the snapshots around the last write (attached to the report)."""
    write = iceberg.last_write
    log = changes_between(iceberg.table, write.before, write.after, net_changes=net)
    mode = "net" if net else "per snapshot"
    attach_changelog(iceberg, log, f"{write.description} ({mode})")
    return log


@then(
    parsers.parse(
        "the changes since the previous snapshot are {inserts:d} inserts, {updates:d} updates "
        "and {deletes:d} deletes"
    ),
    target_fixture="iceberg_changelog",
)
def changes_counted(
    iceberg: GeneratedIcebergTable, inserts: int, updates: int, deletes: int
) -> Changelog:
    """Net changes between the snapshot before the write and the one after it."""
    log = last_write_changes(iceberg)
    assert log.counts() == {"c": inserts, "u": updates, "d": deletes}, log.counts()
    last = iceberg.table.metadata.snapshot_by_id(iceberg.last_write.after)
    assert last is not None
    for event in log.events:
        assert event.source["snapshot_id"] == last.snapshot_id, event.source
        assert event.commit_ts == last.timestamp_ms / 1000, (event.commit_ts, last.timestamp_ms)
    return log


@then("each change is what the write did to its key, with before and after images")
def changes_match_write(iceberg: GeneratedIcebergTable, iceberg_changelog: Changelog) -> None:
    """Key by key: op, before and after equal the model's change (nothing missing or extra)."""
    problems = mismatches(iceberg_changelog.events, iceberg.last_write.expected)
    assert not problems, "derived changes differ from the write:\n" + "\n".join(problems)


@then(
    parsers.parse(
        "{carried:d} unchanged rows were carried over into rewritten files and are not reported"
    )
)
def carried_over(iceberg_changelog: Changelog, carried: int) -> None:
    """Copy-on-write: rows of rewritten files that did not change are dropped by the join."""
    log = iceberg_changelog
    removed = sum(f.record_count for f in log.files if f.change == "removed")
    found = sum(d.carried_over for d in log.diffs)
    evidence.attach_json(
        "carried-over rows", {"rows in removed files": removed, "carried over": found}
    )
    assert found == carried, f"{found} rows carried over, expected {carried}"
    reported_unchanged = [e.key for e in log.events if e.op == "u" and same_row(e.before, e.after)]
    assert not reported_unchanged, f"unchanged rows reported as updates: {reported_unchanged}"


@then("the previous snapshot's rows with the changes applied equal the current table")
def replay_gives_current(iceberg: GeneratedIcebergTable, iceberg_changelog: Changelog) -> None:
    """Old snapshot (time travel) as read events, then the changes -> the current rows."""
    base = snapshot_events(iceberg.table, iceberg.last_write.before)
    rebuilt = rebuild_from_events([*base, *iceberg_changelog.events])
    assert_tables_equal(iceberg.current_rows(), rebuilt, "previous snapshot + changes")


@then(parsers.parse('the upsert committed the snapshots "{operations}" in one metadata commit'))
def upsert_snapshots(iceberg: GeneratedIcebergTable, operations: str) -> None:
    """One transaction, several snapshots: pyiceberg's copy-on-write upsert."""
    write = iceberg.last_write
    expected = [o.strip() for o in operations.split(",")]
    assert write.operations == expected, f"snapshots {write.operations}, expected {expected}"
    assert write.metadata_commits == 1, f"{write.metadata_commits} metadata commits, expected 1"


@then(
    parsers.parse(
        "across the upsert, the changes are {updates:d} updates and {inserts:d} inserts, "
        "one per key"
    )
)
def upsert_as_one(iceberg: GeneratedIcebergTable, updates: int, inserts: int) -> None:
    """Net changes across the whole upsert pair each removed row with its new version."""
    log = last_write_changes(iceberg)
    keys = [e.key for e in log.events]
    assert len(keys) == len(set(keys)), f"a key appears twice: {keys}"
    assert log.counts() == {"c": inserts, "u": updates, "d": 0}, log.counts()
    problems = mismatches(log.events, iceberg.last_write.expected)
    assert not problems, "\n".join(problems)


@then(
    parsers.parse(
        "snapshot by snapshot, each of the {count:d} updated products is a delete in the "
        "overwrite and an insert in the next append"
    )
)
def upsert_per_snapshot(iceberg: GeneratedIcebergTable, count: int) -> None:
    """Per-snapshot changes: the overwrite drops the old row, the append adds the new one."""
    write = iceberg.last_write
    log = last_write_changes(iceberg, net=False)
    overwrite, append = write.new_snapshots[0], write.new_snapshots[1]
    updated = {k: v for k, v in write.expected.items() if v[0] == "u"}
    assert len(updated) == count, f"{len(updated)} updated keys, expected {count}"
    for key, (_, before, after) in updated.items():
        seen = [(e.op, e.source["snapshot_id"]) for e in log.events if e.key == key]
        assert seen == [("d", overwrite), ("c", append)], f"key {key}: {seen}"
        delete, insert = (e for e in log.events if e.key == key)
        assert same_row(delete.before, before) and delete.after is None, delete
        assert same_row(insert.after, after) and insert.before is None, insert


@then(
    parsers.parse(
        "reading the table applies the delete: the products with id {first:d} and {second:d} "
        "are gone, and no data file was added or removed"
    )
)
def merge_on_read_applied(iceberg: GeneratedIcebergTable, first: int, second: int) -> None:
    """A scan applies delete files; the data files of both snapshots are the same."""
    current = iceberg.current_rows()
    assert (first,) not in current and (second,) not in current, sorted(current)
    assert_tables_equal(iceberg.rows, current, "current snapshot vs model")
    write = iceberg.last_write
    before = iceberg.table.snapshot_by_id(write.before) if write.before is not None else None
    after = iceberg.table.snapshot_by_id(write.after)
    assert after is not None
    removed, added = file_diff(iceberg.table, before, after)
    evidence.attach_json(
        "data files added and removed by the merge-on-read delete",
        {"removed": [f.file_path for f, _ in removed], "added": [f.file_path for f, _ in added]},
    )
    assert removed == [] and added == [], (removed, added)


@then(
    "the changes since the previous snapshot cannot be derived: the error names the delete "
    "file and the fix"
)
def delete_files_refused(iceberg: GeneratedIcebergTable) -> None:
    """DeleteFilesError, naming the snapshot, its delete file and how to get rid of it."""
    write = iceberg.last_write
    with pytest.raises(DeleteFilesError) as caught:
        changes_between(iceberg.table, write.before, write.after)
    error = caught.value
    message = str(error)
    evidence.attach_text("error", f"{type(error).__name__}: {message}")
    assert error.snapshot_id == write.after, (error.snapshot_id, write.after)
    assert len(error.delete_files) == 1, error.delete_files
    assert Path(error.delete_files[0]).name in message, message
    assert f"snapshot {write.after} of {iceberg.identifier}" in message, message
    for fix in ("rewrite_data_files", "copy-on-write"):
        assert fix in message, f"the error does not name the fix {fix!r}: {message}"
