"""Delta Lake Change Data Feed helpers on real, small Delta tables in tmp_path (no mocks)."""

import datetime as dt
import json
import os
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from cdc_support.bench import delta as delta_bench
from cdc_support.checks.integrity import compare_tables
from cdc_support.checks.replay import rebuild_from_events
from cdc_support.deltalake import (
    ARROW_SCHEMAS,
    CdfCheckpoint,
    CdfConsumer,
    CdfNotEnabled,
    CdfVersionsUnavailable,
    CheckpointError,
    DeltaLocation,
    FeedRange,
    GeneratedDeltaTable,
    Handled,
    Outage,
    PollFailure,
    RestartAudit,
    TimestampRead,
    action_counts,
    change_type_counts,
    commit_actions,
    commit_operation,
    commit_timestamps,
    contiguous,
    data_change_flags,
    delta_rs_read_error,
    feed_to_events,
    feed_versions,
    image_problems,
    open_table,
    read_changes,
    read_feed,
    read_rows,
    remove_location,
    row_multiset,
    run_batches,
    run_to_end,
    sorted_change_rows,
    unreadable_versions,
    version_events,
    version_feed,
)
from cdc_support.deltalake.tables import (
    append_rows,
    create_cdf_table,
    in_predicate,
    sql_literal,
    update_where,
)
from cdc_support.events import ChangeEvent
from cdc_support.workload import NORMALIZERS, EcommerceGenerator

SCHEMA = pa.schema([("id", pa.int64()), ("name", pa.string())])
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def location(tmp_path) -> DeltaLocation:
    return DeltaLocation.local(tmp_path / "t")


@pytest.fixture
def small(location) -> DeltaLocation:
    """v0 create, v1 append ids 1..3, v2 update id 2, v3 delete id 3."""
    create_cdf_table(location, SCHEMA)
    append_rows(location, [{"id": i, "name": f"n{i}"} for i in (1, 2, 3)])
    update_where(location, "id = 2", values={"name": "O'Neil"})
    open_table(location).delete("id = 3")
    return location


@pytest.fixture
def generated(location) -> GeneratedDeltaTable:
    table = GeneratedDeltaTable(location, EcommerceGenerator(3))
    table.append(6)
    return table


# ------------------------------------------------------------------ normalisation


def test_inserts_updates_and_deletes_normalise_to_c_u_d(small):
    events = read_changes(small, ["id"])
    assert [(e.op, e.key, e.source["version"]) for e in events] == [
        ("c", (1,), 1),
        ("c", (2,), 1),
        ("c", (3,), 1),
        ("u", (2,), 2),
        ("d", (3,), 3),
    ]
    update = events[3]
    assert update.before == {"id": 2, "name": "n2"}
    assert update.after == {"id": 2, "name": "O'Neil"}
    assert update.source["change_type"] == "update"
    delete = events[4]
    assert delete.before == {"id": 3, "name": "n3"} and delete.after is None
    assert all(e.after is not None and e.before is None for e in events[:3])


def test_commit_ts_is_the_history_timestamp_and_observed_ts_is_set(small):
    history = commit_timestamps(small)
    for event in read_changes(small, ["id"]):
        assert event.commit_ts == history[event.source["version"]] / 1000
        assert event.observed_ts is not None and event.lag_seconds is not None


def test_raw_feed_counts_change_types_and_has_no_view_types(small):
    feed = read_feed(small)
    assert change_type_counts(feed) == {
        "insert": 3,
        "update_preimage": 1,
        "update_postimage": 1,
        "delete": 1,
    }
    assert not any(pa.types.is_string_view(f.type) for f in feed.schema)
    assert feed.column("_commit_version").to_pylist() == sorted(
        feed.column("_commit_version").to_pylist()
    )


def test_replace_in_one_commit_orders_delete_before_insert(generated):
    commit = generated.overwrite(generated.pick_keys(2))
    events = read_changes(generated.location, ["id"], FeedRange(commit.version, commit.version))
    assert [e.op for e in events] == ["d", "d", "c", "c"]
    rebuilt = rebuild_from_events(read_changes(generated.location, ["id"]))
    assert compare_tables(generated.rows, rebuilt, normalizers=NORMALIZERS).ok


def test_update_that_changes_the_key_becomes_delete_and_create(small):
    version = update_where(small, "id = 1", expressions={"id": "id + 100"})
    events = read_changes(small, ["id"], FeedRange(version, version))
    assert [(e.op, e.key, e.source["change_type"]) for e in events] == [
        ("d", (1,), "update_preimage"),
        ("c", (101,), "update_postimage"),
    ]


def test_generated_workload_replays_to_the_table(generated):
    generated.workload(8)
    rebuilt = rebuild_from_events(read_changes(generated.location, generated.key))
    report = compare_tables(generated.read_current(), rebuilt, normalizers=NORMALIZERS)
    assert report.ok, report.summary()
    assert compare_tables(generated.rows, rebuilt, normalizers=NORMALIZERS).ok


def _feed_table(change_type: str = "insert") -> pa.Table:
    return pa.table(
        {
            "id": [1],
            "_change_type": [change_type],
            "_commit_version": pa.array([1], pa.uint64()),
            "_commit_timestamp": pa.array([1_000], pa.timestamp("ms")),
        }
    )


def test_feed_to_events_rejects_bad_input():
    assert feed_to_events(_feed_table(), ["id"])[0].commit_ts == 1.0
    with pytest.raises(ValueError, match=r"no column\(s\) \['nope'\]"):
        feed_to_events(_feed_table(), ["nope"])
    with pytest.raises(ValueError, match="at least one key column"):
        feed_to_events(_feed_table(), [])
    with pytest.raises(ValueError, match="unknown _change_type 'upsert'"):
        feed_to_events(_feed_table("upsert"), ["id"])
    with pytest.raises(ValueError, match="_change_type"):
        feed_to_events(pa.table({"id": [1]}), ["id"])


# ------------------------------------------------------------------ ranges


def test_timestamp_range_reads_the_commits_in_it(small):
    history = commit_timestamps(small)
    start = dt.datetime.fromtimestamp(history[2] / 1000, tz=dt.UTC)
    by_datetime = read_feed(small, FeedRange(starting_timestamp=start, ending_timestamp=history[3]))
    in_range = {v for v, ts in history.items() if history[2] <= ts <= history[3]}
    assert set(by_datetime.column("_commit_version").to_pylist()) == in_range - {0}
    by_version = read_feed(small, FeedRange(min(in_range), max(in_range)))
    assert by_datetime.num_rows == by_version.num_rows


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"starting_version": -1}, "starting_version must be >= 0"),
        ({"starting_version": 3, "ending_version": 2}, "before starting_version"),
        ({"starting_timestamp": dt.datetime(2024, 1, 1)}, "timezone-aware"),
    ],
)
def test_feed_range_rejects_bad_ranges(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FeedRange(**kwargs)


def test_feed_range_repr_and_arguments():
    ts = dt.datetime(2024, 1, 1, 12, tzinfo=dt.UTC)
    assert repr(FeedRange(2, 5)) == "versions 2..5"
    assert FeedRange(starting_timestamp=ts).load_cdf_arguments() == {
        "starting_version": 0,
        "starting_timestamp": "2024-01-01T12:00:00.000+00:00",
    }


def test_table_without_cdf_is_refused_with_the_fix(location):
    write_deltalake(location.uri, pa.Table.from_pylist([{"id": 1, "name": "a"}], schema=SCHEMA))
    with pytest.raises(CdfNotEnabled, match=r"delta.enableChangeDataFeed.*set_table_properties"):
        read_feed(location)


# ------------------------------------------------------------------ vacuumed versions


def _vacuum_appends(table: GeneratedDeltaTable) -> list[int]:
    """Two appends, compacted away and vacuumed: their versions become unreadable."""
    appends = [table.append(2).version, table.append(2).version]
    table.optimize()
    assert table.vacuum(0)
    return appends


def test_vacuumed_versions_are_found_from_the_log(generated):
    appends = _vacuum_appends(generated)
    missing = unreadable_versions(generated.location, 0, generated.version)
    assert sorted(missing) == [1, *appends]
    assert all(path.endswith(".parquet") for paths in missing.values() for path in paths)


def test_read_feed_checks_upfront_and_names_versions_and_fix(generated):
    appends = _vacuum_appends(generated)
    latest = open_table(generated.location).version()
    with pytest.raises(CdfVersionsUnavailable) as info:
        read_feed(generated.location, FeedRange(2))
    error = info.value
    assert error.needed == (2, latest)
    assert sorted(error.missing) == appends
    assert error.available == (appends[-1] + 1, latest)
    assert f"needs versions 2..{latest}" in str(error)
    assert "delta-rs said" not in str(error)  # found from the log, before reading
    assert "fix:" in str(error) and "delta.deletedFileRetentionDuration" in str(error)


def test_late_arrow_error_is_turned_into_the_same_exception(generated):
    appends = _vacuum_appends(generated)
    with pytest.raises(CdfVersionsUnavailable) as info:
        read_feed(generated.location, FeedRange(2), check=False)
    assert sorted(info.value.missing) == appends
    assert "delta-rs said:" in str(info.value)
    assert isinstance(info.value.__cause__, pa.ArrowException)


def test_timestamp_range_is_checked_like_a_version_range(generated):
    appends = _vacuum_appends(generated)
    history = commit_timestamps(generated.location)
    by_time = FeedRange(
        starting_timestamp=history[appends[0]], ending_timestamp=history[appends[1]]
    )
    with pytest.raises(CdfVersionsUnavailable) as info:
        read_feed(generated.location, by_time)
    in_range = sorted(
        v for v, ts in history.items() if history[appends[0]] <= ts <= history[appends[1]]
    )
    assert info.value.needed == (in_range[0], in_range[-1])
    assert "delta-rs said" not in str(info.value)
    with pytest.raises(CdfVersionsUnavailable, match="delta-rs said"):
        read_feed(generated.location, by_time, check=False)
    # From the first commit after the appends on, only OPTIMIZE and VACUUM: readable, no rows.
    later = [ts for ts in history.values() if ts > history[appends[-1]]]
    if later:  # (unless they all share the last append's millisecond)
        assert read_feed(generated.location, FeedRange(starting_timestamp=min(later))).num_rows == 0


def test_removed_log_entry_makes_its_version_unreadable(small):
    open_table(small).create_checkpoint()
    os.remove(os.path.join(small.uri, "_delta_log", f"{1:020d}.json"))
    assert open_table(small).version() == 3  # the table still opens, from the checkpoint
    assert unreadable_versions(small, 0, 3) == {1: [f"commit log entry _delta_log/{1:020d}.json"]}
    with pytest.raises(CdfVersionsUnavailable, match="version 1 can no longer be read"):
        read_feed(small, FeedRange(1))
    with pytest.raises(CdfVersionsUnavailable):
        read_feed(small, FeedRange(1), check=False)


def test_unavailable_message_groups_version_ranges():
    error = CdfVersionsUnavailable("t", (1, 9), (6, 9), {1: ["a"], 2: ["b"], 3: ["c"], 5: ["d"]})
    assert "versions 1..3, 5 can no longer be read (a is gone)" in str(error)
    assert "from version 6 to 9" in str(error)
    nothing = CdfVersionsUnavailable("t", (1, 2), None, {2: ["x"]})
    assert "no version of the requested range can be read" in str(nothing)


# ------------------------------------------------------------------ checkpoint


def test_checkpoint_round_trip_is_atomic(tmp_path):
    checkpoint = CdfCheckpoint(tmp_path / "cp" / "checkpoint.json")
    assert checkpoint.load("t") is None
    checkpoint.save("t", 4)
    checkpoint.save("t", 7)
    assert checkpoint.load("t") == 7
    assert os.listdir(tmp_path / "cp") == ["checkpoint.json"]  # no temp file left behind
    assert json.loads(checkpoint.path.read_text())["source"] == "t"


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        "{}",
        '{"table": "t", "last_version": 3}',
        '{"source": "t", "position": {"last_version": -1}}',
        '{"source": "t", "position": {"last_version": "3"}}',
    ],
)
def test_corrupt_checkpoint_names_the_file_and_fix(tmp_path, content):
    path = tmp_path / "checkpoint.json"
    path.write_text(content)
    with pytest.raises(
        CheckpointError,
        match=r"checkpoint.json is not a (readable|valid CDF) checkpoint.*delete it",
    ):
        CdfCheckpoint(path).load("t")


def test_checkpoint_of_another_table_is_refused(small, tmp_path):
    checkpoint = CdfCheckpoint(tmp_path / "checkpoint.json")
    checkpoint.save("s3://elsewhere/table", 1)
    with pytest.raises(CheckpointError, match="belongs to 's3://elsewhere/table'"):
        CdfConsumer(small, ["id"], checkpoint)


# ------------------------------------------------------------------ consumer


def test_consumer_resumes_after_restart_without_loss_or_repeat(generated, tmp_path):
    path = tmp_path / "checkpoint.json"
    generated.workload(5)
    handled = []
    first = CdfConsumer(generated.location, ["id"], path)
    for _ in range(2):
        first.run_once(lambda b: handled.extend(b.events), max_versions=2)
    assert first.last_version == 3
    generated.workload(3)
    second = CdfConsumer(generated.location, ["id"], path)
    assert second.next_version == 4
    batches = second.run_to_end(lambda b: handled.extend(b.events), max_versions=3)
    assert [(b.first_version, b.last_version) for b in batches] == [(4, 6), (7, 9)]
    assert second.last_version == generated.version
    reference = read_changes(generated.location, ["id"])
    key = [(e.source["version"], e.key, e.op) for e in handled]
    assert key == [(e.source["version"], e.key, e.op) for e in reference]
    assert len(set(key)) == len(key)
    assert second.poll().empty


def test_failed_handler_leaves_the_checkpoint_so_the_batch_is_read_again(small, tmp_path):
    consumer = CdfConsumer(small, ["id"], tmp_path / "checkpoint.json")

    def crash(batch):
        raise RuntimeError("sink down")

    with pytest.raises(RuntimeError, match="sink down"):
        consumer.run_once(crash, max_versions=2)
    assert consumer.last_version is None
    again = CdfConsumer(small, ["id"], tmp_path / "checkpoint.json").poll(max_versions=2)
    assert (again.first_version, again.last_version) == (0, 1)
    assert len(again.events) == 3


def test_commit_must_follow_the_checkpoint(small, tmp_path):
    consumer = CdfConsumer(small, ["id"], tmp_path / "checkpoint.json")
    batch = consumer.poll(max_versions=1)
    consumer.commit(batch)
    with pytest.raises(CheckpointError, match="expects version 1 next"):
        consumer.commit(batch)


def test_checkpoint_ahead_of_the_table_is_refused(small, tmp_path):
    checkpoint = CdfCheckpoint(tmp_path / "checkpoint.json")
    checkpoint.save(small.uri, 9)  # e.g. the table was re-created with fewer versions
    consumer = CdfConsumer(small, ["id"], checkpoint)
    with pytest.raises(CheckpointError, match=r"version 9 .* latest version is 3.*fix"):
        consumer.poll()
    checkpoint.save(small.uri, 3)
    assert consumer.poll().empty
    ahead = CdfConsumer(small, ["id"], tmp_path / "other.json", start_version=5)
    assert ahead.poll().empty  # no checkpoint: waits for the table to reach its start version


def test_consumer_rejects_bad_arguments(small, tmp_path):
    path = tmp_path / "checkpoint.json"
    with pytest.raises(ValueError, match=r"unknown: \['nope'\]"):
        CdfConsumer(small, ["nope"], path)
    with pytest.raises(ValueError, match="start_version"):
        CdfConsumer(small, ["id"], path, start_version=-1)
    with pytest.raises(ValueError, match="max_versions"):
        CdfConsumer(small, ["id"], path).poll(max_versions=0)


def test_consumer_stops_on_vacuumed_versions_and_keeps_its_checkpoint(generated, tmp_path):
    consumer = CdfConsumer(generated.location, ["id"], tmp_path / "checkpoint.json")
    consumer.run_to_end(lambda b: None)
    caught_up = consumer.last_version
    appends = _vacuum_appends(generated)
    with pytest.raises(CdfVersionsUnavailable) as info:
        consumer.poll()
    assert sorted(info.value.missing) == appends
    assert consumer.last_version == caught_up


# ------------------------------------------------------------------ tables and locations


def test_sql_literals_quote_safely():
    assert sql_literal("O'Neil") == "'O''Neil'"
    assert sql_literal(None) == "NULL"
    assert sql_literal(True) == "TRUE"
    when = dt.datetime(2024, 1, 1, 2, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert sql_literal(when) == "'2024-01-01T00:00:00.000000Z'"
    assert in_predicate("id", [1, 2]) == "id IN (1, 2)"
    with pytest.raises(ValueError, match="naive"):
        sql_literal(dt.datetime(2024, 1, 1))
    with pytest.raises(ValueError, match="at least one value"):
        in_predicate("id", [])
    with pytest.raises(TypeError, match="no SQL literal"):
        sql_literal(object())


def test_generated_table_keys_continue_across_seeds(generated):
    generated.gen = EcommerceGenerator(3)  # same seed again: keys restart at 1
    with pytest.raises(ValueError, match="exist already"):
        generated.new_rows(1)
    generated.reseed(3)
    assert generated.new_rows(1)[0]["id"] == 7


def test_generated_table_rejects_unknown_table(location):
    with pytest.raises(ValueError, match="choose one of customers, products, orders"):
        GeneratedDeltaTable(location, EcommerceGenerator(1), "order_items")


def test_products_and_orders_round_trip_through_delta(tmp_path):
    for name in ("products", "orders"):
        table = GeneratedDeltaTable(
            DeltaLocation.local(tmp_path / name), EcommerceGenerator(5), name
        )
        table.append(4)
        table.update(table.pick_keys(2))
        assert open_table(table.location).schema().to_arrow().names == ARROW_SCHEMAS[name].names
        report = compare_tables(table.rows, table.read_current(), normalizers=NORMALIZERS)
        assert report.ok, report.summary()


def test_time_travel_reads_an_old_version(small):
    assert read_rows(small, ["id"], 1) == {
        (1,): {"id": 1, "name": "n1"},
        (2,): {"id": 2, "name": "n2"},
        (3,): {"id": 3, "name": "n3"},
    }
    assert sorted(read_rows(small, ["id"])) == [(1,), (2,)]


def test_commit_actions_are_the_log_lines(small):
    actions = commit_actions(small, 2)
    assert actions[0]["commitInfo"]["operation"] == "UPDATE"
    assert any("cdc" in a for a in actions)
    with pytest.raises(FileNotFoundError):
        commit_actions(small, 99)


def test_location_child_repr_and_removal(tmp_path):
    base = DeltaLocation("s3://lake/prefix/", {"AWS_SECRET_ACCESS_KEY": "secret"})
    assert base.child("t").uri == "s3://lake/prefix/t"
    assert "secret" not in repr(base) and "AWS_SECRET_ACCESS_KEY" in repr(base)
    assert not base.is_local and DeltaLocation.local(tmp_path).is_local
    assert DeltaLocation.local(tmp_path).options() is None
    with pytest.raises(ValueError, match="plain folder name"):
        base.child("a/b")
    local = DeltaLocation.local(tmp_path / "gone")
    create_cdf_table(local, SCHEMA)
    assert DeltaTable.is_deltatable(local.uri)
    remove_location(local)
    assert not (tmp_path / "gone").exists()
    remove_location(local)  # absent: nothing to do


def test_location_parse():
    assert DeltaLocation.parse("") is None
    options = '{"AWS_ENDPOINT_URL": "http://127.0.0.1:9000", "AWS_ALLOW_HTTP": true}'
    location = DeltaLocation.parse("s3://lake/cdc", options)
    assert location == DeltaLocation(
        "s3://lake/cdc", {"AWS_ENDPOINT_URL": "http://127.0.0.1:9000", "AWS_ALLOW_HTTP": "true"}
    )
    assert DeltaLocation.parse("s3://lake/cdc").options() is None
    for bad in ("[1]", "{nope"):
        with pytest.raises(ValueError, match="must be a JSON object of delta-rs storage options"):
            DeltaLocation.parse("s3://x", bad)


# ------------------------------------------------------------------ audit and consumer runs


def test_commit_log_entry_is_read_for_its_operation_actions_and_flags(small):
    update = commit_actions(small, 2)
    assert commit_operation(update) == "UPDATE"
    assert action_counts(update) == {"add": 1, "remove": 1, "cdc": 1}
    assert data_change_flags(update) == {True}
    assert action_counts([{"commitInfo": {}}]) == {"add": 0, "remove": 0, "cdc": 0}
    assert commit_operation([]) == "?"


def test_change_rows_of_a_version_sort_by_key_then_delete_pre_post_insert(small):
    rows = sorted_change_rows(small, ["id"], 2)
    assert [(r["id"], r["_change_type"]) for r in rows] == [
        (2, "update_preimage"),
        (2, "update_postimage"),
    ]
    assert [e.op for e in version_events(small, ["id"], 2)] == ["u"]
    assert feed_versions(version_feed(small, 3)) == {3}


def test_image_problems_name_each_wrong_image(small):
    v1, v2, v3 = (read_rows(small, ["id"], v) for v in (1, 2, 3))
    update, delete = version_events(small, ["id"], 2), version_events(small, ["id"], 3)
    assert image_problems(update, v1, v2) == []
    assert image_problems(delete, v2, v3) == []
    assert image_problems(update, v1, v1) == ["after-image of (2,) differs"]
    assert image_problems(update, v2, v2) == ["before-image of (2,) differs"]
    assert image_problems(delete, v2, v2) == [
        "deleted key (3,) is still in the new version without a re-insert"
    ]
    assert image_problems(update, {}, {}) == [
        "u for (2,): not in the previous version",
        "u for (2,): not in the new version",
    ]


def test_timestamp_read_holds_the_versions_committed_in_its_range(small):
    read = TimestampRead.between_versions(small, 1, 3)
    history = commit_timestamps(small)
    assert (read.start_ms, read.end_ms) == (history[1], history[3])
    assert read.versions == {1, 2, 3} <= read.in_range()
    assert {1, 2, 3} <= set(read.boundary_versions())
    assert read.matches_version_read(small)
    assert repr(read) == f"feed from {history[1]} to {history[3]} (epoch ms)"
    assert row_multiset(read.rows) == row_multiset(read_feed(small, FeedRange(1, 3)))


def test_delta_rs_alone_fails_only_when_vacuumed_rows_are_read(generated):
    assert delta_rs_read_error(generated.location, 0) is None
    _vacuum_appends(generated)
    error = delta_rs_read_error(generated.location, 2)
    assert error is not None and "not found" in error


def _ev(op: str, key: int, version: int) -> ChangeEvent:
    after = None if op == "d" else {"id": key}
    return ChangeEvent(op, (key,), None, after, {"version": version}, None, None)


def test_restart_audit_finds_lost_and_repeated_events():
    reference = [_ev("c", 1, 1), _ev("c", 2, 1), _ev("u", 1, 2), _ev("d", 2, 3)]
    clean = RestartAudit.of(reference, reference)
    assert not clean.lost and not clean.repeated and clean.same_sequences
    assert clean.summary() == {
        "keys": 2,
        "events expected": 4,
        "events handled": 4,
        "lost": {},
        "repeated": {},
    }
    broken = RestartAudit.of([*reference[:2], reference[1], reference[3]], reference)
    assert broken.lost == {(1,): [(2, "u")]}
    assert broken.repeated == {(2,): [(1, "c")]}
    assert not broken.same_sequences
    assert contiguous([(0, 1), (2, 4), (5, 5)]) and not contiguous([(0, 1), (3, 4)])


def test_consumer_runs_record_their_batches(generated, tmp_path):
    consumer = CdfConsumer(generated.location, ["id"], tmp_path / "checkpoint.json")
    first = run_batches(consumer, count=1, size=1)
    assert first.spans == [(0, 0)] and repr(first) == "handled versions 0..0"
    rest = run_to_end(consumer, size=4)
    assert rest.spans == [(1, 1)] and len(rest.events) == 6
    assert rest.summary_rows() == [
        {"versions": "1..1", "events": 6, "c": 6, "u": 0, "d": 0, "checkpoint after": 1}
    ]
    assert repr(Handled()) == "handled versions none" and Handled().summary_rows() == []
    with pytest.raises(AssertionError, match="ran out of versions"):
        run_batches(consumer, count=1, size=1)


def test_outage_and_poll_failure_have_short_reprs(generated):
    appends = [generated.append(1), generated.append(1)]
    outage = Outage(appends, generated.update(generated.pick_keys(1)))
    assert outage.gone == [2, 3] and outage.commits == [*appends, outage.update]
    assert repr(outage) == "appends at versions [2, 3], vacuumed files"
    error = CdfVersionsUnavailable("file:///t", (2, 4), (4, 4), {2: ["a"], 3: ["b"]})
    assert repr(PollFailure(error)) == "CdfVersionsUnavailable(needed=(2, 4))"


# ------------------------------------------------------------------ benchmark


def test_the_benchmark_measures_merge_cdf_read_and_consumer(tmp_path):
    result = delta_bench.run(
        rows=40,
        merges=2,
        merge_rows=10,
        small_merges=2,
        small_merge_rows=4,
        consumer_versions=2,
        repeat=1,
        workdir=tmp_path,
    )
    assert result["merge"]["large"]["change_rows"] == 2 * (2 * 9 + 1)
    assert result["merge"]["small"]["table_rows_before"] == 42
    cdf = result["cdf"]
    assert cdf["versions"] == 6
    expected_rows = 40 + 2 * 19 + 2 * (2 * 3 + 1)
    assert {cdf[k]["rows"] for k in ("load_cdf", "load_cdf_by_timestamp", "read_feed")} == {
        expected_rows
    }
    assert cdf["normalise"]["events"] == 40 + 2 * 10 + 2 * 4
    assert result["consumer"]["events"] == cdf["normalise"]["events"]
    assert result["consumer"]["batches"] == 3
    assert os.listdir(tmp_path) == []  # the temp table is removed
    text = delta_bench.format_report(result)
    assert "load_cdf by version" in text and "2 x 10 (large)" in text
    with pytest.raises(ValueError, match="merge sizes >= 2"):
        delta_bench.run(merge_rows=1, workdir=tmp_path)
