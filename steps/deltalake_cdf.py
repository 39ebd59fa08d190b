"""Steps for features/deltalake/change_data_feed.feature: Delta Lake's Change Data Feed.

Tables live in the scenario's temp folder. To run them on an S3-compatible store instead, set
``CDC_DELTA_URI`` (e.g. ``s3://lake/cdc-spec``) and ``CDC_DELTA_STORAGE_OPTIONS`` (a JSON object
of delta-rs storage options); each scenario then writes below a folder of its own, removed after.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from pytest_bdd import given, parsers, then, when

from cdc_support.checks.integrity import canonical_row, rebuild_from_events
from cdc_support.deltalake import (
    CdfBatch,
    CdfConsumer,
    CdfVersionsUnavailable,
    DeltaCommit,
    DeltaLocation,
    FeedRange,
    GeneratedDeltaTable,
    change_type_counts,
    commit_actions,
    commit_timestamps,
    feed_rows,
    feed_to_events,
    open_table,
    read_feed,
    read_rows,
    remove_location,
)
from cdc_support.events import ChangeEvent
from cdc_support.workload import EcommerceGenerator
from pytest_cdc import evidence
from pytest_cdc.janitor import scenario_name
from steps.common import assert_tables_equal

# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def delta_location(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DeltaLocation]:
    """Where this scenario's Delta tables go: tmp_path, or below $CDC_DELTA_URI (removed after)."""
    try:
        base = DeltaLocation.from_env()
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from exc
    if base is None:
        yield DeltaLocation.local(tmp_path / "delta")
        return
    label = (request.node.originalname or request.node.name).removeprefix("test_")
    location = base.child(scenario_name(label, prefix="delta"))
    yield location
    remove_location(location)


@pytest.fixture
def delta_attached() -> set[int]:
    """Versions whose change rows and log entry this scenario has attached already."""
    return set()


@dataclass
class Handled:
    """What a consumer handed to its handler, batch by batch."""

    batches: list[CdfBatch]

    @property
    def events(self) -> list[ChangeEvent]:
        """Every handled event, in the order handled."""
        return [e for b in self.batches for e in b.events]

    def __repr__(self) -> str:
        spans = ", ".join(f"{b.first_version}..{b.last_version}" for b in self.batches)
        return f"handled versions {spans or 'none'}"

    def attach(self, title: str) -> None:
        """Attach one row per batch: its versions, event counts and the checkpoint after it."""
        rows = [
            {
                "versions": f"{b.first_version}..{b.last_version}",
                "events": len(b.events),
                **{op: sum(e.op == op for e in b.events) for op in "cud"},
                "checkpoint after": b.last_version,
            }
            for b in self.batches
        ]
        evidence.attach_html(title, evidence.table_html(title, rows or [{"(no batch)": ""}]))


# --------------------------------------------------------------------------- helpers


def _parse_counts(spec: str) -> Counter[str]:
    """'3 update_preimage, 2 insert' -> Counter; 'no rows' -> empty."""
    counts: Counter[str] = Counter()
    if spec.strip() in ("no rows", "nothing"):
        return counts
    for part in spec.split(","):
        match = re.fullmatch(r"\s*(\d+)\s+(\w+)\s*", part)
        assert match, f"cannot read {part!r} in {spec!r}: write e.g. '3 insert, 1 delete'"
        counts[match.group(2)] += int(match.group(1))
    return counts


def _feed_of(table: GeneratedDeltaTable, version: int) -> pa.Table:
    return read_feed(table.location, FeedRange(version, version))


_TYPE_ORDER = {"delete": 0, "update_preimage": 1, "update_postimage": 2, "insert": 3}


def _operation(actions: list[dict[str, Any]]) -> str:
    """The operation a commit log entry records (WRITE, UPDATE, MERGE, OPTIMIZE, ...)."""
    return next((a["commitInfo"]["operation"] for a in actions if "commitInfo" in a), "?")


def _attach_commit(
    table: GeneratedDeltaTable, commit: DeltaCommit, attached: set[int]
) -> list[dict[str, Any]]:
    """Attach the change rows of one commit (HTML) and its _delta_log entry (JSON), once."""
    actions = commit_actions(table.location, commit.version)
    if commit.version in attached:
        return actions
    attached.add(commit.version)
    operation = _operation(actions)
    rows = sorted(
        feed_rows(_feed_of(table, commit.version)),
        key=lambda r: (*(r[c] for c in table.key), _TYPE_ORDER.get(r["_change_type"], 9)),
    )
    title = f"change rows of version {commit.version} ({operation}, {commit.kind})"
    evidence.attach_html(title, evidence.table_html(title, rows or [{"(no rows)": ""}]))
    evidence.attach_json(f"_delta_log/{commit.version:020d}.json ({operation})", actions)
    return actions


def _row_multiset(table: pa.Table) -> Counter[str]:
    return Counter(canonical_row(row) for row in feed_rows(table))


def _action_counts(actions: list[dict[str, Any]]) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for action in actions:
        counts.update(k for k in action if k in ("add", "remove", "cdc"))
    return {kind: counts.get(kind, 0) for kind in ("add", "remove", "cdc")}


# --------------------------------------------------------------------------- given


@given(
    "a Delta customers table with the Change Data Feed enabled",
    target_fixture="delta_table",
)
def cdf_table(delta_location: DeltaLocation) -> GeneratedDeltaTable:
    """Create an empty table (version 0) with delta.enableChangeDataFeed=true."""
    table = GeneratedDeltaTable(delta_location.child("customers"), EcommerceGenerator(7))
    evidence.attach_json("table properties", open_table(table.location).metadata().configuration)
    return table


@given(parsers.parse("{count:d} generated customers (seed {seed:d}) are appended to it"))
def seed_customers(delta_table: GeneratedDeltaTable, count: int, seed: int):
    """Re-seed the generator and append its rows in one commit."""
    delta_table.reseed(seed)
    commit = delta_table.append(count)
    rows = [delta_table.rows[k] for k in commit.keys]
    evidence.attach_html(
        f"appended customers (seed {seed})",
        evidence.table_html(f"customers v{commit.version}", rows),
    )


@given(parsers.parse("{appends:d} more appends of {count:d} generated customers each"))
def more_appends(delta_table: GeneratedDeltaTable, appends: int, count: int):
    """Each append is its own commit and writes its own small data file."""
    for _ in range(appends):
        delta_table.append(count)
    files = open_table(delta_table.location).file_uris()
    evidence.attach_json("data files of the table", files)


@given("a CDF consumer with a checkpoint file", target_fixture="consumer")
def consumer_with_checkpoint(delta_table: GeneratedDeltaTable, tmp_path: Path) -> CdfConsumer:
    """A consumer from version 0; its position lives in checkpoint.json."""
    return CdfConsumer(delta_table.location, delta_table.key, tmp_path / "checkpoint.json")


@given(
    "a CDF consumer with a checkpoint file has handled the feed up to the latest version",
    target_fixture="consumer",
)
def consumer_caught_up(delta_table: GeneratedDeltaTable, tmp_path: Path) -> CdfConsumer:
    """Run a consumer to the end once; the checkpoint then holds the latest version."""
    consumer = CdfConsumer(delta_table.location, delta_table.key, tmp_path / "checkpoint.json")
    consumer.run_to_end(lambda batch: None)
    assert consumer.last_version == delta_table.version
    return consumer


def _run_workload(delta_table: GeneratedDeltaTable, count: int) -> list[DeltaCommit]:
    commits = delta_table.workload(count)
    evidence.attach_json(
        f"workload: {count} commits",
        [
            {"version": c.version, "kind": c.kind, "keys": [list(k) for k in c.keys]}
            for c in commits
        ],
    )
    return commits


@given(parsers.parse("a generated workload of {count:d} commits with seed {seed:d} has run"))
def seeded_workload(delta_table: GeneratedDeltaTable, count: int, seed: int):
    """Random appends, updates, deletes and merges, one commit each (seeded)."""
    delta_table.reseed(seed)
    _run_workload(delta_table, count)


@when(parsers.parse("a generated workload of {count:d} more commits runs while it is stopped"))
def workload_while_stopped(delta_table: GeneratedDeltaTable, count: int):
    """More random commits, continuing the same generator."""
    _run_workload(delta_table, count)


# --------------------------------------------------------------------------- when: one write


@when(parsers.parse("I append {count:d} more generated customers"), target_fixture="commit")
def append_more(delta_table: GeneratedDeltaTable, count: int) -> DeltaCommit:
    """A blind append: new data files, no change files."""
    return delta_table.append(count)


@when(parsers.parse("I update the name of customer {key:d}"), target_fixture="commit")
def update_name(delta_table: GeneratedDeltaTable, key: int) -> DeltaCommit:
    """UPDATE customers SET full_name = ..., country = ... WHERE id = key."""
    return delta_table.update([(key,)])


@when(parsers.parse("I delete customers {first:d} and {second:d}"), target_fixture="commit")
def delete_two(delta_table: GeneratedDeltaTable, first: int, second: int) -> DeltaCommit:
    """DELETE FROM customers WHERE id IN (first, second)."""
    return delta_table.delete([(first,), (second,)])


@when(
    parsers.parse("I merge {updates:d} changed customers and {inserts:d} new ones"),
    target_fixture="commit",
)
def merge_upsert(delta_table: GeneratedDeltaTable, updates: int, inserts: int) -> DeltaCommit:
    """MERGE ... WHEN MATCHED UPDATE WHEN NOT MATCHED INSERT."""
    return delta_table.merge(updates=updates, inserts=inserts)


@when(
    parsers.parse(
        "I merge {updates:d} changed customers, {inserts:d} new ones and {deletes:d} deletions"
    ),
    target_fixture="commit",
)
def merge_with_delete(
    delta_table: GeneratedDeltaTable, updates: int, inserts: int, deletes: int
) -> DeltaCommit:
    """MERGE with a WHEN MATCHED ... DELETE clause as well."""
    return delta_table.merge(updates=updates, inserts=inserts, deletes=deletes)


@when(
    parsers.parse("I overwrite customers {first:d} to {last:d} with a predicate"),
    target_fixture="commit",
)
def overwrite_range(delta_table: GeneratedDeltaTable, first: int, last: int) -> DeltaCommit:
    """write_deltalake(mode='overwrite', predicate='id IN (...)') with changed rows."""
    return delta_table.overwrite([(k,) for k in range(first, last + 1)])


@when(
    parsers.parse("I update customer {key:d} setting its name to its own value"),
    target_fixture="commit",
)
def update_noop(delta_table: GeneratedDeltaTable, key: int) -> DeltaCommit:
    """UPDATE customers SET full_name = full_name WHERE id = key."""
    return delta_table.update_noop([(key,)], "full_name")


@when("the table is compacted with OPTIMIZE", target_fixture="commit")
def compact(delta_table: GeneratedDeltaTable) -> DeltaCommit:
    """Bin-packing compaction of the small files into one."""
    commit = delta_table.optimize()
    evidence.attach_json("OPTIMIZE metrics", commit.metrics)
    return commit


# --------------------------------------------------------------------------- then: one write


@then(parsers.parse("the feed of the new version holds {spec}"))
def feed_holds(
    delta_table: GeneratedDeltaTable, commit: DeltaCommit, spec: str, delta_attached: set[int]
):
    """Count the feed rows of the commit by _change_type."""
    _attach_commit(delta_table, commit, delta_attached)
    counts = change_type_counts(_feed_of(delta_table, commit.version))
    expected = dict(_parse_counts(spec))
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
):
    """What delta-rs gives for a rewrite that changed no value."""
    _attach_commit(delta_table, commit, delta_attached)
    counts = change_type_counts(_feed_of(delta_table, commit.version))
    assert counts == {"delete": deletes, "insert": inserts}, counts


@then(parsers.parse("it normalises to the events {spec}"))
def normalises_to(delta_table: GeneratedDeltaTable, commit: DeltaCommit, spec: str):
    """c/u/d per the mapping, deletes of a commit before its inserts."""
    events = feed_to_events(_feed_of(delta_table, commit.version), delta_table.key)
    evidence.attach_events(f"events of version {commit.version}", events, limit=50)
    ops = Counter(e.op for e in events)
    assert ops == _parse_counts(spec), f"expected events {spec}, got {dict(ops)}"
    assert {e.source["version"] for e in events} == {commit.version}
    order = [e.op for e in events]
    assert order == sorted(order, key="duc".index), f"events not in d, u, c order: {order}"
    assert set(commit.keys) >= {e.key for e in events}, "events for keys the write did not touch"


@then(
    "every event's before-image is the row of the previous version "
    "and its after-image the row of the new version"
)
def images_match_versions(delta_table: GeneratedDeltaTable, commit: DeltaCommit):
    """Check each image against the table read at version-1 and at version (time travel)."""
    previous = read_rows(delta_table.location, delta_table.key, commit.version - 1)
    current = read_rows(delta_table.location, delta_table.key, commit.version)
    events = feed_to_events(_feed_of(delta_table, commit.version), delta_table.key)
    assert events, f"version {commit.version} has no events to check"
    for event in events:
        if event.before is not None:
            assert event.key in previous, f"{event.op} for {event.key}: not in the previous version"
            assert event.before == previous[event.key], f"before-image of {event.key} differs"
        else:
            assert event.op == "c"
        if event.after is not None:
            assert event.key in current, f"{event.op} for {event.key}: not in the new version"
            assert event.after == current[event.key], f"after-image of {event.key} differs"
        else:
            assert event.op == "d"
            assert event.key not in current or any(
                e.op == "c" and e.key == event.key for e in events
            ), f"deleted key {event.key} is still in the new version without a re-insert"


@then("replaying the whole feed rebuilds the table")
def replay_rebuilds(delta_table: GeneratedDeltaTable):
    """Versions 0..latest, replayed by key, equal the table and the rows the test wrote."""
    events = feed_to_events(read_feed(delta_table.location), delta_table.key)
    rebuilt = rebuild_from_events(events)
    assert_tables_equal(delta_table.read_current(), rebuilt, "feed replayed vs Delta table")
    assert_tables_equal(delta_table.rows, rebuilt, "feed replayed vs rows written")


# --------------------------------------------------------------------------- timestamps


@when(
    parsers.parse("{count:d} more commits are made: an update, a delete, an append and a merge"),
    target_fixture="extra_commits",
)
def four_commits(delta_table: GeneratedDeltaTable, count: int) -> list[DeltaCommit]:
    """Four commits of different kinds, back to back (no pauses)."""
    commits = [
        delta_table.update(delta_table.pick_keys(1)),
        delta_table.delete(delta_table.pick_keys(1)),
        delta_table.append(2),
        delta_table.merge(updates=1, inserts=1),
    ]
    assert len(commits) == count
    return commits


@dataclass
class TimestampRead:
    """A feed read by commit-timestamp range, with the history it was derived from."""

    start_ms: int
    end_ms: int
    history: dict[int, int]
    rows: pa.Table

    def __repr__(self) -> str:
        return f"feed from {self.start_ms} to {self.end_ms} (epoch ms)"


@when(
    parsers.parse(
        "I read the feed from the commit timestamp of version {first:d} to that of version "
        "{last:d}, as the table history gives them"
    ),
    target_fixture="timestamp_read",
)
def read_by_timestamp(delta_table: GeneratedDeltaTable, first: int, last: int) -> TimestampRead:
    """load_cdf(starting_timestamp=..., ending_timestamp=...) with timestamps from history()."""
    history = commit_timestamps(delta_table.location)
    evidence.attach_html(
        "table history (version → commit timestamp)",
        evidence.table_html(
            "DeltaTable.history()",
            [{"version": v, "timestamp_ms": ts} for v, ts in sorted(history.items())],
        ),
    )
    start, end = history[first], history[last]
    rows = read_feed(
        delta_table.location, FeedRange(starting_timestamp=start, ending_timestamp=end)
    )
    evidence.attach_html(
        "change rows read by timestamp", evidence.table_html("by timestamp", feed_rows(rows))
    )
    return TimestampRead(start, end, history, rows)


@then("it holds exactly the versions whose commit timestamp lies in that range")
def versions_in_range(delta_table: GeneratedDeltaTable, timestamp_read: TimestampRead):
    """Both ends inclusive; versions with no change rows (the create) cannot show up."""
    read = timestamp_read
    in_range = {v for v, ts in read.history.items() if read.start_ms <= ts <= read.end_ms}
    with_rows = {
        int(v) for v in read_feed(delta_table.location).column("_commit_version").to_pylist()
    }
    versions = set(read.rows.column("_commit_version").to_pylist())
    evidence.attach_json(
        "versions", {"in range by history": sorted(in_range), "read": sorted(versions)}
    )
    assert versions == in_range & with_rows, (
        f"read versions {sorted(versions)}, expected {sorted(in_range & with_rows)}"
    )
    first, last = (
        min(v for v, ts in read.history.items() if ts == read.start_ms),
        max(v for v, ts in read.history.items() if ts == read.end_ms),
    )
    assert versions >= set(range(first, last + 1)) & with_rows
    by_version = read_feed(delta_table.location, FeedRange(min(versions), max(versions)))
    assert _row_multiset(by_version) == _row_multiset(read.rows), (
        "timestamp and version reads differ"
    )


@then("each event's commit time is its version's commit timestamp in the history")
def commit_time_matches(delta_table: GeneratedDeltaTable, timestamp_read: TimestampRead):
    """ChangeEvent.commit_ts comes from _commit_timestamp, the commitInfo timestamp."""
    events = feed_to_events(timestamp_read.rows, delta_table.key)
    assert events
    for event in events:
        expected = timestamp_read.history[event.source["version"]] / 1000
        assert event.commit_ts == expected, (event.source, event.commit_ts, expected)


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
):
    """OPTIMIZE rewrites files; its actions say no data changed."""
    actions = _attach_commit(delta_table, commit, delta_attached)
    counts = _action_counts(actions)
    assert counts == {"add": added, "remove": removed, "cdc": 0}, counts
    flags = {a[k]["dataChange"] for a in actions for k in ("add", "remove") if k in a}
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
):
    """A rewrite whose change files would be empty writes none."""
    counts = _action_counts(_attach_commit(delta_table, commit, delta_attached))
    assert counts == {"add": added, "remove": removed, "cdc": 0}, counts


@then("the table holds the same rows as the version before")
def same_rows(delta_table: GeneratedDeltaTable, commit: DeltaCommit):
    """Compaction changes files, not rows (the version before is read by time travel)."""
    before = read_rows(delta_table.location, delta_table.key, commit.version - 1)
    assert_tables_equal(before, delta_table.read_current(), "after OPTIMIZE vs the version before")


@then("every deleted row comes back unchanged as an inserted row")
def deleted_rows_reinserted(delta_table: GeneratedDeltaTable, commit: DeltaCommit):
    """The delete and insert images of the no-op rewrite are the same rows."""
    events = feed_to_events(_feed_of(delta_table, commit.version), delta_table.key)
    deleted = {e.key: e.before for e in events if e.op == "d"}
    inserted = {e.key: e.after for e in events if e.op == "c"}
    assert deleted, "no deletes in the feed of the no-op update"
    assert deleted == inserted, "deleted and re-inserted rows differ"
    assert deleted == read_rows(delta_table.location, delta_table.key, commit.version - 1)


# --------------------------------------------------------------------------- vacuum


@dataclass
class Outage:
    """Commits made while the consumer was stopped, and what VACUUM removed."""

    appends: list[DeltaCommit]
    update: DeltaCommit
    vacuumed: list[str]

    def __repr__(self) -> str:
        return f"appends at versions {[c.version for c in self.appends]}, vacuumed files"


@given(
    parsers.parse(
        "while it is stopped, {appends:d} appends of {count:d} customers and an update of "
        "customer {key:d} are made"
    ),
    target_fixture="outage",
)
def writes_while_stopped(
    delta_table: GeneratedDeltaTable,
    appends: int,
    count: int,
    key: int,
    delta_attached: set[int],
) -> Outage:
    """Appends (read from data files) and an update (read from a change file)."""
    made = [delta_table.append(count) for _ in range(appends)]
    outage = Outage(made, delta_table.update([(key,)]), [])
    for commit in [*outage.appends, outage.update]:
        _attach_commit(delta_table, commit, delta_attached)  # what the feed held before VACUUM
    return outage


@given(
    parsers.parse(
        "the table is compacted with OPTIMIZE and vacuumed with a retention of {hours:d} hours"
    )
)
def compact_and_vacuum(delta_table: GeneratedDeltaTable, outage: Outage, hours: int):
    """OPTIMIZE removes the small files from the table; VACUUM deletes them from storage."""
    first = delta_table.optimize().version
    outage.vacuumed = delta_table.vacuum(hours)
    for version in range(first, delta_table.version + 1):
        actions = commit_actions(delta_table.location, version)
        evidence.attach_json(f"_delta_log/{version:020d}.json ({_operation(actions)})", actions)
    evidence.attach_json("files deleted by VACUUM", outage.vacuumed)
    evidence.attach_json("DeltaTable.history()", open_table(delta_table.location).history())
    assert outage.vacuumed, "VACUUM deleted nothing"


@dataclass(frozen=True)
class PollFailure:
    """The error a poll raised (short repr for the report)."""

    error: CdfVersionsUnavailable

    def __repr__(self) -> str:
        return f"{type(self.error).__name__}(needed={self.error.needed})"


@when("the consumer polls again", target_fixture="poll_failure")
def poll_again(consumer: CdfConsumer) -> PollFailure:
    """Expect the consumer's own error, raised before any row is read."""
    with pytest.raises(CdfVersionsUnavailable) as info:
        consumer.poll()
    evidence.attach_text("the consumer's error", str(info.value))
    return PollFailure(info.value)


@then(
    "it fails with CdfVersionsUnavailable naming the versions it needs, those that are gone "
    "and the fix"
)
def error_names_versions(
    delta_table: GeneratedDeltaTable, consumer: CdfConsumer, outage: Outage, poll_failure
):
    """Needed: checkpoint+1..latest; gone: exactly the appends; readable: from the update on."""
    error = poll_failure.error
    latest = open_table(delta_table.location).version()
    needed = (consumer.next_version, latest)
    gone = [c.version for c in outage.appends]
    assert error.needed == needed, error.needed
    assert sorted(error.missing) == gone, f"unreadable versions {sorted(error.missing)}"
    assert error.available == (outage.update.version, latest), error.available
    text = str(error)
    assert f"needs versions {needed[0]}..{needed[1]}" in text
    assert f"versions {gone[0]}..{gone[-1]}" in text
    assert f"from version {outage.update.version} to {latest}" in text
    assert "fix:" in text and "VACUUM" in text and "snapshot" in text


@then("its checkpoint still holds the version it had handled up to")
def checkpoint_unchanged(consumer: CdfConsumer, outage: Outage):
    """A failed poll moves nothing."""
    assert consumer.last_version == outage.appends[0].version - 1


@then("delta-rs alone opens the same feed without error and fails only when the rows are read")
def delta_rs_fails_late(delta_table: GeneratedDeltaTable, consumer: CdfConsumer):
    """The pitfall the consumer guards against: load_cdf is lazy."""
    reader = open_table(delta_table.location).load_cdf(starting_version=consumer.next_version)
    with pytest.raises(pa.ArrowException) as info:
        pa.table(reader)
    evidence.attach_text("delta-rs's own error when the rows are read", str(info.value))
    assert "not found" in str(info.value)


# --------------------------------------------------------------------------- restart


@when(
    parsers.parse(
        "the consumer handles the feed {size:d} versions at a time and stops after {count:d} "
        "batches"
    ),
    target_fixture="first_run",
)
def first_run(consumer: CdfConsumer, size: int, count: int) -> Handled:
    """Each batch: handle (keep the events), then commit the checkpoint."""
    handled = Handled([])
    for _ in range(count):
        batch = consumer.run_once(handled.batches.append, max_versions=size)
        assert not batch.empty, "the table ran out of versions before the consumer stopped"
    assert consumer.last_version == handled.batches[-1].last_version
    handled.attach("batches of the first consumer")
    evidence.attach_json(
        "checkpoint file when the consumer stopped",
        json.loads(consumer.checkpoint.path.read_text(encoding="utf-8")),
    )
    return handled


@when(
    "a new consumer starts from the same checkpoint file and handles the feed to the end",
    target_fixture="second_run",
)
def second_run(consumer: CdfConsumer, first_run: Handled) -> Handled:
    """Nothing shared with the first consumer but the checkpoint file."""
    restarted = CdfConsumer(consumer.location, consumer.key, consumer.checkpoint.path)
    assert restarted.next_version == first_run.batches[-1].last_version + 1
    handled = Handled([])
    restarted.run_to_end(handled.batches.append, max_versions=4)
    handled.attach("batches of the restarted consumer")
    return handled


def _per_key(events: list[ChangeEvent]) -> dict[tuple[Any, ...], list[tuple[int, str]]]:
    by_key: dict[tuple[Any, ...], list[tuple[int, str]]] = defaultdict(list)
    for event in events:
        by_key[event.key].append((event.source["version"], event.op))
    return by_key


@then(
    "per key, the events handled by the two consumers equal one full read of the feed: "
    "none lost, none repeated"
)
def no_loss_no_repeat(delta_table: GeneratedDeltaTable, first_run: Handled, second_run: Handled):
    """Compare (version, op) lists per key, and the handled version ranges."""
    handled = first_run.events + second_run.events
    reference = feed_to_events(read_feed(delta_table.location), delta_table.key)
    got, want = _per_key(handled), _per_key(reference)
    lost = {k: [e for e in want[k] if e not in got.get(k, [])] for k in want}
    repeated = {k: [e for e, n in Counter(v).items() if n > 1] for k, v in got.items()}
    lost = {k: v for k, v in lost.items() if v}
    repeated = {k: v for k, v in repeated.items() if v}
    evidence.attach_json(
        "restart audit",
        {
            "first consumer": repr(first_run),
            "second consumer": repr(second_run),
            "keys": len(want),
            "events expected": len(reference),
            "events handled": len(handled),
            "lost": {str(k): v for k, v in lost.items()},
            "repeated": {str(k): v for k, v in repeated.items()},
        },
    )
    assert not lost, f"events lost across the restart: {lost}"
    assert not repeated, f"events handled twice: {repeated}"
    assert dict(got) == dict(want), "per-key event sequences differ from one full read"
    spans = [(b.first_version, b.last_version) for b in first_run.batches + second_run.batches]
    assert all(b[0] == a[1] + 1 for a, b in pairwise(spans)), spans
    assert spans[0][0] == 0 and spans[-1][1] == open_table(delta_table.location).version()


@then("the table rebuilt from the handled events equals the Delta table")
def handled_rebuilds(delta_table: GeneratedDeltaTable, first_run: Handled, second_run: Handled):
    """Replay what the two consumers handled."""
    rebuilt = rebuild_from_events(first_run.events + second_run.events)
    assert_tables_equal(delta_table.read_current(), rebuilt, "handled events vs Delta table")


@then("the checkpoint holds the table's latest version")
def checkpoint_at_latest(delta_table: GeneratedDeltaTable, consumer: CdfConsumer):
    """After the run to the end, the next poll has nothing to read."""
    latest = open_table(delta_table.location).version()
    assert consumer.last_version == latest
    assert consumer.poll().empty
