"""Steps for features/deltalake/change_data_feed.feature: the feed and log entry of one write."""

from __future__ import annotations

import re
from collections import Counter

from pytest_bdd import parsers, then

from cdc_support.checks.replay import rebuild_from_events
from cdc_support.deltalake import (
    DeltaCommit,
    GeneratedDeltaTable,
    action_counts,
    change_type_counts,
    data_change_flags,
    feed_to_events,
    image_problems,
    read_feed,
    read_rows,
    version_events,
    version_feed,
)
from pytest_cdc.report import evidence
from steps.common import assert_tables_equal
from steps.deltalake_attachments import attach_commit


def parse_counts(spec: str) -> Counter[str]:
    """'3 update_preimage, 2 insert' -> Counter; 'no rows' -> empty."""
    counts: Counter[str] = Counter()
    if spec.strip() in ("no rows", "nothing"):
        return counts
    for part in spec.split(","):
        match = re.fullmatch(r"\s*(\d+)\s+(\w+)\s*", part)
        assert match, f"cannot read {part!r} in {spec!r}: write e.g. '3 insert, 1 delete'"
        counts[match.group(2)] += int(match.group(1))
    return counts


# --------------------------------------------------------------------------- change rows


@then(parsers.parse("the feed of the new version holds {spec}"))
def feed_holds(
    delta_table: GeneratedDeltaTable, commit: DeltaCommit, spec: str, delta_attached: set[int]
) -> None:
    """Count the feed rows of the commit by _change_type."""
    attach_commit(delta_table, commit, delta_attached)
    counts = change_type_counts(version_feed(delta_table.location, commit.version))
    expected = dict(parse_counts(spec))
    assert counts == expected, (
        f"feed of version {commit.version} ({commit.kind}): expected {expected}, got {counts}"
    )


@then(
    parsers.parse(
        "the feed of that version has {deletes:d} delete rows, {inserts:d} insert rows "
        "and no update rows"
    )
)
def feed_delete_insert_only(
    delta_table: GeneratedDeltaTable,
    commit: DeltaCommit,
    deletes: int,
    inserts: int,
    delta_attached: set[int],
) -> None:
    """What delta-rs gives for a rewrite that changed no value."""
    attach_commit(delta_table, commit, delta_attached)
    counts = change_type_counts(version_feed(delta_table.location, commit.version))
    assert counts == {"delete": deletes, "insert": inserts}, counts


# --------------------------------------------------------------------------- events


@then(parsers.parse("it normalises to the events {spec}"))
def normalises_to(delta_table: GeneratedDeltaTable, commit: DeltaCommit, spec: str) -> None:
    """c/u/d per the mapping, deletes of a commit before its inserts."""
    events = version_events(delta_table.location, delta_table.key, commit.version)
    evidence.attach_events(f"events of version {commit.version}", events, limit=50)
    ops = Counter(e.op for e in events)
    assert ops == parse_counts(spec), f"expected events {spec}, got {dict(ops)}"
    assert {e.source["version"] for e in events} == {commit.version}
    order = [e.op for e in events]
    assert order == sorted(order, key="duc".index), f"events not in d, u, c order: {order}"
    assert set(commit.keys) >= {e.key for e in events}, "events for keys the write did not touch"


@then(
    "every event's before-image is the row of the previous version "
    "and its after-image the row of the new version"
)
def images_match_versions(delta_table: GeneratedDeltaTable, commit: DeltaCommit) -> None:
    """Check each image against the table read at version-1 and at version (time travel)."""
    previous = read_rows(delta_table.location, delta_table.key, commit.version - 1)
    current = read_rows(delta_table.location, delta_table.key, commit.version)
    events = version_events(delta_table.location, delta_table.key, commit.version)
    assert events, f"version {commit.version} has no events to check"
    problems = image_problems(events, previous, current)
    assert not problems, f"version {commit.version}: {'; '.join(problems)}"


@then("replaying the whole feed rebuilds the table")
def replay_rebuilds(delta_table: GeneratedDeltaTable) -> None:
    """Versions 0..latest, replayed by key, equal the table and the rows the test wrote."""
    events = feed_to_events(read_feed(delta_table.location), delta_table.key)
    rebuilt = rebuild_from_events(events)
    assert_tables_equal(delta_table.read_current(), rebuilt, "feed replayed vs Delta table")
    assert_tables_equal(delta_table.rows, rebuilt, "feed replayed vs rows written")


@then("every deleted row comes back unchanged as an inserted row")
def deleted_rows_reinserted(delta_table: GeneratedDeltaTable, commit: DeltaCommit) -> None:
    """The delete and insert images of the no-op rewrite are the same rows."""
    events = version_events(delta_table.location, delta_table.key, commit.version)
    deleted = {e.key: e.before for e in events if e.op == "d"}
    inserted = {e.key: e.after for e in events if e.op == "c"}
    assert deleted, "no deletes in the feed of the no-op update"
    assert deleted == inserted, "deleted and re-inserted rows differ"
    assert deleted == read_rows(delta_table.location, delta_table.key, commit.version - 1)


# --------------------------------------------------------------------------- commit log


@then(
    parsers.parse(
        "the commit log entry of that version removes {removed:d} files and adds {added:d}, "
        "all with dataChange=false"
    )
)
def log_no_data_change(
    delta_table: GeneratedDeltaTable,
    commit: DeltaCommit,
    removed: int,
    added: int,
    delta_attached: set[int],
) -> None:
    """OPTIMIZE rewrites files; its actions say no data changed."""
    actions = attach_commit(delta_table, commit, delta_attached)
    counts = action_counts(actions)
    assert counts == {"add": added, "remove": removed, "cdc": 0}, counts
    flags = data_change_flags(actions)
    assert flags == {False}, f"dataChange flags of the files: {flags}"


@then(
    parsers.parse(
        "the commit log entry of that version has {added:d} add, {removed:d} remove "
        "and no cdc action"
    )
)
def log_add_remove_no_cdc(
    delta_table: GeneratedDeltaTable,
    commit: DeltaCommit,
    added: int,
    removed: int,
    delta_attached: set[int],
) -> None:
    """A rewrite whose change files would be empty writes none."""
    counts = action_counts(attach_commit(delta_table, commit, delta_attached))
    assert counts == {"add": added, "remove": removed, "cdc": 0}, counts


@then("the table holds the same rows as the version before")
def same_rows(delta_table: GeneratedDeltaTable, commit: DeltaCommit) -> None:
    """Compaction changes files, not rows (the version before is read by time travel)."""
    before = read_rows(delta_table.location, delta_table.key, commit.version - 1)
    assert_tables_equal(before, delta_table.read_current(), "after OPTIMIZE vs the version before")
