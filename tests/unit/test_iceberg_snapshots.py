"""Iceberg snapshot-diff changelog on real, small pyiceberg tables (SQLite catalog in tmp_path)."""

from __future__ import annotations

import datetime as dt
import json
import math
import random
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.table.snapshots import Operation
from pyiceberg.types import DoubleType, LongType, NestedField, StringType

from cdc_support.bench import iceberg as iceberg_bench
from cdc_support.checkpoint import CheckpointError, JsonCheckpoint
from cdc_support.checks.integrity import canonical_row
from cdc_support.checks.replay import rebuild_from_events
from cdc_support.events import ChangeEvent
from cdc_support.iceberg import (
    Checkpoint,
    DeleteFilesError,
    IcebergChangelogError,
    SnapshotConsumer,
    SnapshotExpiredError,
    SnapshotLineageError,
    changes_between,
    check_catalog_uri,
    collapse_to_net,
    commit_position_deletes,
    create_table,
    delete_files,
    diff_snapshots,
    event_rows,
    generated_schema,
    iceberg_schema,
    identifier_columns,
    open_catalog,
    read_snapshot,
    row_positions,
    rows_by_key,
    snapshot_events,
    snapshot_info,
    to_arrow,
)
from cdc_support.iceberg.expected import expected_changes, mismatches
from cdc_support.iceberg.files import file_diff
from cdc_support.iceberg.generated import GeneratedIcebergTable
from cdc_support.iceberg.polls import ConsumerRun
from cdc_support.iceberg.snapshots import recorded_parent
from cdc_support.iceberg.warehouse import open_warehouse
from cdc_support.workload import EcommerceGenerator

Key = tuple[Any, ...]
Row = dict[str, Any]


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def catalog(tmp_path: Path) -> Iterator[SqlCatalog]:
    cat = open_catalog(tmp_path / "warehouse")
    yield cat
    cat.engine.dispose()


@pytest.fixture
def gen() -> EcommerceGenerator:
    return EcommerceGenerator(3)


@pytest.fixture
def generated(catalog: SqlCatalog, gen: EcommerceGenerator) -> GeneratedIcebergTable:
    source = GeneratedIcebergTable(catalog, "shop.products", gen)
    source.load(20)
    return source


@pytest.fixture
def products(generated: GeneratedIcebergTable) -> tuple[Table, list[Row]]:
    return generated.table, generated.generated


def _sid(table: Table) -> int:
    snap = table.current_snapshot()
    assert snap is not None
    return snap.snapshot_id


def _changed(gen: EcommerceGenerator, row: Row) -> Row:
    return {**row, **gen.changes("products", row)}


def _shape(events: list[ChangeEvent]) -> list[tuple[Any, ...]]:
    return [
        (e.op, e.key, e.before and canonical_row(e.before), e.after and canonical_row(e.after))
        for e in events
    ]


def _expected(before: dict[Key, Row], after: dict[Key, Row]) -> list[tuple[Any, ...]]:
    """The per-key changes from one table state to another, in the shape of :func:`_shape`."""
    return [
        (op, key, old and canonical_row(old), new and canonical_row(new))
        for key, (op, old, new) in expected_changes(before, after).items()
    ]


# --------------------------------------------------------------------------- catalog


def test_default_catalog_is_a_sqlite_file_in_the_warehouse(tmp_path: Path) -> None:
    cat = open_catalog(tmp_path / "wh", name="unit")
    try:
        assert cat.engine.dialect.name == "sqlite"
        assert (tmp_path / "wh" / "catalog.db").is_file()
        table = create_table(cat, "ns.t", generated_schema("customers"))
        assert Path(table.location().removeprefix("file://")).is_relative_to(tmp_path / "wh")
        assert cat.load_table("ns.t").metadata.table_uuid == table.metadata.table_uuid
    finally:
        cat.engine.dispose()


def test_postgresql_uris_load_the_installed_psycopg3_driver() -> None:
    for uri in ("postgresql+psycopg://u:p@127.0.0.1:1/db", "postgresql://u:p@127.0.0.1:1/db"):
        check_catalog_uri(uri)
        engine = sqlalchemy.create_engine(uri)
        assert engine.dialect.driver == "psycopg"
        engine.dispose()


def test_a_uri_whose_driver_is_missing_names_the_fix_and_hides_the_password() -> None:
    with pytest.raises(IcebergChangelogError) as caught:
        check_catalog_uri("postgresql+pg8000://app:secret@db:5432/catalog")
    message = str(caught.value)
    assert "pg8000" in message and "postgresql+psycopg://" in message
    assert "secret" not in message and "app:***@db:5432" in message


def test_an_unknown_dialect_names_the_fix() -> None:
    with pytest.raises(IcebergChangelogError, match=r"sqlite:///path/to/catalog\.db"):
        check_catalog_uri("nosuchdb://host/db")


# --------------------------------------------------------------------------- schemas


def test_iceberg_schema_makes_identifier_fields_required() -> None:
    schema = iceberg_schema([("a", LongType()), ("b", StringType())], ["a"])
    assert schema.identifier_field_ids == [1]
    assert schema.find_field("a").required and not schema.find_field("b").required
    with pytest.raises(ValueError, match="identifier fields"):
        iceberg_schema([("a", LongType())], ["z"])
    with pytest.raises(ValueError, match="identifier fields"):
        iceberg_schema([("a", LongType())], [])


def test_generated_schemas_take_the_generator_rows(catalog: SqlCatalog) -> None:
    gen = EcommerceGenerator(5)
    customers = gen.customers(3)
    orders = gen.orders(3, customers)
    items = gen.order_items(orders, gen.products(2))
    for name, rows in (("customers", customers), ("orders", orders), ("order_items", items)):
        table = create_table(catalog, f"shop.{name}", generated_schema(name))
        table.append(to_arrow(table, rows))
        key = identifier_columns(table)
        assert rows_by_key(read_snapshot(table), key) == rows_by_key(rows, key)
    assert identifier_columns(catalog.load_table("shop.order_items")) == ("order_id", "line_no")
    with pytest.raises(ValueError, match="choose one of"):
        generated_schema("invoices")


def test_a_table_without_identifier_fields_is_refused_with_the_fix(catalog: SqlCatalog) -> None:
    plain = Schema(NestedField(1, "id", LongType(), required=True))
    with pytest.raises(IcebergChangelogError, match="iceberg_schema"):
        create_table(catalog, "shop.plain", plain)
    catalog.create_namespace_if_not_exists("shop2")
    table = catalog.create_table("shop2.plain", plain)
    with pytest.raises(IcebergChangelogError, match="set_identifier_fields"):
        identifier_columns(table)
    assert identifier_columns(table, ("id",)) == ("id",)


# --------------------------------------------------------------------------- diffs


def test_an_append_is_inserts_and_the_append_scan_gives_the_same(
    products: tuple[Table, list[Row]], gen: EcommerceGenerator
) -> None:
    table, _ = products
    start = _sid(table)
    new = gen.products(3) + gen.products(2)
    table.append(to_arrow(table, new[:3]))
    table.append(to_arrow(table, new[3:]))
    fast = diff_snapshots(table, start)
    slow = diff_snapshots(table, start, use_append_scan=False)
    assert fast.via == "incremental_append_scan" and slow.via == "file diff"
    assert fast.operations == ["append", "append"]
    assert fast.counts() == {"c": 5, "u": 0, "d": 0}
    assert _shape(fast.events) == _shape(slow.events)
    assert [e.key for e in fast.events] == [(r["id"],) for r in new]
    assert fast.carried_over == 0 and len(slow.added_files) == 2 and not slow.removed_files


def test_an_upsert_is_three_snapshots_updates_inserts_and_carried_over_rows(
    products: tuple[Table, list[Row]], gen: EcommerceGenerator
) -> None:
    table, rows = products
    start = _sid(table)
    changed = [_changed(gen, r) for r in rows[:3]]
    new = gen.products(2)
    result = table.upsert(to_arrow(table, [*changed, rows[3], *new]))
    assert (result.rows_updated, result.rows_inserted) == (3, 2)
    diff = diff_snapshots(table, start)
    assert diff.operations == ["overwrite", "append", "append"]
    assert diff.counts() == {"c": 2, "u": 3, "d": 0}
    assert diff.carried_over == 17  # the rewritten file's other rows, row 4 among them
    assert [f.record_count for f in diff.removed_files] == [20]
    assert sorted(f.record_count for f in diff.added_files) == [2, 3, 17]
    updates = [e for e in diff.events if e.op == "u"]
    assert _shape(updates) == _expected(
        {(r["id"],): r for r in rows[:3]}, {(r["id"],): r for r in changed}
    )
    per = changes_between(table, start, net_changes=False)
    assert [d.counts() for d in per.diffs] == [
        {"c": 0, "u": 0, "d": 3},
        {"c": 3, "u": 0, "d": 0},
        {"c": 2, "u": 0, "d": 0},
    ]
    assert [d.carried_over for d in per.diffs] == [17, 0, 0]


def test_events_carry_the_snapshot_in_source_and_its_time_as_commit_ts(
    products: tuple[Table, list[Row]], gen: EcommerceGenerator
) -> None:
    table, rows = products
    start = _sid(table)
    table.delete("id = 1")
    single = diff_snapshots(table, start)
    snap = table.current_snapshot()
    assert snap is not None
    (event,) = single.events
    assert event.op == "d" and event.key == (1,) and event.after is None
    assert canonical_row(event.before or {}) == canonical_row(rows[0])
    assert event.source == {
        "table": "shop.products",
        "snapshot_id": snap.snapshot_id,
        "from_snapshot_id": start,
        "sequence_number": snap.sequence_number,
        "operation": "overwrite",
        "snapshot_count": 1,
    }
    assert event.commit_ts == snap.timestamp_ms / 1000
    assert event.lag_seconds is not None and event.lag_seconds >= 0
    table.upsert(to_arrow(table, [_changed(gen, rows[1])]))
    net = diff_snapshots(table, start)
    assert {e.source["operation"] for e in net.events} == {"net"}
    assert {e.source["snapshot_count"] for e in net.events} == {3}


def test_delete_by_filter_and_overwrite_with_filter(
    products: tuple[Table, list[Row]], gen: EcommerceGenerator
) -> None:
    table, rows = products
    state = {(r["id"],): r for r in rows}
    start = _sid(table)
    table.delete("stock < 200")
    after_delete = {k: r for k, r in state.items() if r["stock"] >= 200}
    assert 0 < len(after_delete) < len(state)
    middle = _sid(table)
    assert _shape(diff_snapshots(table, start).events) == _expected(state, after_delete)
    keep = sorted(after_delete)[:3]
    replacement = [_changed(gen, after_delete[keep[0]]), after_delete[keep[1]], *gen.products(1)]
    low, high = keep[0][0], keep[2][0]
    table.overwrite(to_arrow(table, replacement), overwrite_filter=f"id >= {low} and id <= {high}")
    final = {k: r for k, r in after_delete.items() if not low <= k[0] <= high}
    final.update({(r["id"],): r for r in replacement})
    assert _shape(diff_snapshots(table, middle).events) == _expected(after_delete, final)
    assert _shape(diff_snapshots(table, start).events) == _expected(state, final)
    assert rows_by_key(read_snapshot(table), ("id",)) == final
    assert rows_by_key(read_snapshot(table, start), ("id",)) == state


def test_net_changes_equal_folded_per_snapshot_changes_over_a_random_history(
    products: tuple[Table, list[Row]], gen: EcommerceGenerator
) -> None:
    table, rows = products
    state = {(r["id"],): r for r in rows}
    start_state = dict(state)
    start = _sid(table)
    rng = random.Random(99)
    for _ in range(6):
        kind = rng.choice(["append", "upsert", "delete", "reinsert"])
        keys = sorted(state)
        if kind == "append":
            new = gen.products(2)
            table.append(to_arrow(table, new))
            state.update({(r["id"],): r for r in new})
        elif kind == "upsert":
            changed = [_changed(gen, state[k]) for k in rng.sample(keys, 2)]
            table.upsert(to_arrow(table, changed))
            state.update({(r["id"],): r for r in changed})
        elif kind == "delete":
            victim = rng.choice(keys)
            table.delete(f"id = {victim[0]}")
            del state[victim]
        else:
            gone = sorted(start_state.keys() - state.keys())
            if gone:
                table.append(to_arrow(table, [start_state[gone[0]]]))
                state[gone[0]] = start_state[gone[0]]
    net = changes_between(table, start)
    per = changes_between(table, start, net_changes=False)
    assert len(per.diffs) == len(net.snapshot_ids) >= 6
    assert _shape(net.events) == _expected(start_state, state)
    assert _shape(collapse_to_net(per.events)) == _shape(net.events)
    replayed = rebuild_from_events([*snapshot_events(table, start), *per.events])
    assert {k: canonical_row(v) for k, v in replayed.items()} == {
        k: canonical_row(v) for k, v in state.items()
    }


def test_a_range_from_table_creation_reads_every_row_as_an_insert(
    products: tuple[Table, list[Row]],
) -> None:
    table, rows = products
    log = changes_between(table, None)
    assert log.counts() == {"c": 20, "u": 0, "d": 0}
    assert _shape(log.events) == _expected({}, {(r["id"],): r for r in rows})
    assert changes_between(table, _sid(table)).events == []


def test_an_empty_table_has_no_changes(catalog: SqlCatalog) -> None:
    table = create_table(catalog, "shop.empty", generated_schema("products"))
    log = changes_between(table, None)
    assert log.diffs == [] and log.to_snapshot_id is None
    with pytest.raises(IcebergChangelogError, match="no snapshot yet"):
        diff_snapshots(table, None)


def test_non_unique_keys_nulls_and_nan_are_joined_row_by_row(catalog: SqlCatalog) -> None:
    schema = iceberg_schema([("id", LongType()), ("score", DoubleType())], ["id"])
    table = create_table(catalog, "shop.scores", schema)
    rows = [
        {"id": i, "score": math.nan if i % 3 == 0 else None if i % 3 == 1 else i / 2}
        for i in range(1, 10)
    ]
    table.append(to_arrow(table, rows))
    start = _sid(table)
    table.upsert(to_arrow(table, [{"id": 2, "score": 99.5}]))
    diff = diff_snapshots(table, start)
    # NaN != NaN and null rows must still count as carried over, not as updates
    assert diff.counts() == {"c": 0, "u": 1, "d": 0} and diff.carried_over == 8
    (update,) = diff.events
    assert update.key == (2,) and update.before == {"id": 2, "score": 1.0}
    # Iceberg does not enforce the identifier: a second row for key 4 is just appended
    table.append(to_arrow(table, [{"id": 4, "score": 7.0}]))
    middle = _sid(table)
    table.delete("id = 4")
    both = diff_snapshots(table, middle)
    assert [(e.op, e.key) for e in both.events] == [("d", (4,)), ("d", (4,))]
    assert sorted(e.before["score"] for e in both.events if e.before and e.before["score"]) == [7.0]
    assert diff_snapshots(table, start).counts() == {"c": 0, "u": 1, "d": 1}


# --------------------------------------------------------------------------- errors


def test_an_expired_start_snapshot_is_a_clear_error(
    products: tuple[Table, list[Row]], gen: EcommerceGenerator
) -> None:
    table, rows = products
    start = _sid(table)
    table.upsert(to_arrow(table, [_changed(gen, rows[0])]))
    current = _sid(table)
    old = [s.snapshot_id for s in table.snapshots() if s.snapshot_id != current]
    table.maintenance.expire_snapshots().by_ids(old).commit()
    assert [s.snapshot_id for s in table.snapshots()] == [current]
    # pyiceberg clears the parent id of a snapshot whose parent it expires; the manifest
    # list still records it, which is how the changelog tells an orphan from a first snapshot
    (kept,) = table.snapshots()
    assert kept.parent_snapshot_id is None
    assert recorded_parent(table, kept) in old
    for call in (
        lambda: diff_snapshots(table, start),
        lambda: changes_between(table, start, net_changes=False),
        lambda: read_snapshot(table, start),
    ):
        with pytest.raises(SnapshotExpiredError) as caught:
            call()
        message = str(caught.value)
        assert caught.value.snapshot_id == start
        assert f"snapshot {start} of shop.products" in message
        assert f"oldest snapshot still kept is {current}" in message
        assert "bootstrap" in message
    # net changes from table creation need only the current snapshot
    assert changes_between(table, None).counts() == {"c": 20, "u": 0, "d": 0}
    with pytest.raises(SnapshotExpiredError, match="cannot be walked"):
        changes_between(table, None, net_changes=False)


def test_an_expired_snapshot_inside_the_range_is_named(
    products: tuple[Table, list[Row]], gen: EcommerceGenerator
) -> None:
    table, _ = products
    start = _sid(table)
    table.append(to_arrow(table, gen.products(1)))
    middle = _sid(table)
    table.append(to_arrow(table, gen.products(1)))
    table.maintenance.expire_snapshots().by_id(middle).commit()
    for net in (True, False):
        with pytest.raises(SnapshotExpiredError) as caught:
            changes_between(table, start, net_changes=net)
        assert caught.value.snapshot_id == middle
        assert f"snapshot {middle} of shop.products, between snapshot {start}" in str(caught.value)


def test_a_start_that_is_not_an_ancestor_is_a_lineage_error(
    products: tuple[Table, list[Row]], gen: EcommerceGenerator
) -> None:
    table, _ = products
    first = _sid(table)
    table.append(to_arrow(table, gen.products(1)))
    abandoned = _sid(table)
    table.manage_snapshots().rollback_to_snapshot(first).commit()
    table.append(to_arrow(table, gen.products(1)))
    with pytest.raises(SnapshotLineageError) as caught:
        diff_snapshots(table, abandoned)
    assert caught.value.snapshot_id == abandoned
    assert "not an ancestor" in str(caught.value) and "rolled back" in str(caught.value)
    assert diff_snapshots(table, first).counts() == {"c": 1, "u": 0, "d": 0}


def test_a_snapshot_with_delete_files_is_refused_with_the_fix(
    products: tuple[Table, list[Row]], gen: EcommerceGenerator
) -> None:
    table, rows = products
    start = _sid(table)
    positions = row_positions(table, "id", {rows[1]["id"]})
    assert list(positions.values()) == [[1]]
    mor = commit_position_deletes(table, positions)
    # the delete is real: pyiceberg's reader applies it, and the metadata lists a delete file
    assert _sid(table) == mor and table.snapshot_by_id(mor).summary.operation == Operation.DELETE
    start_snap, mor_snap = table.snapshot_by_id(start), table.snapshot_by_id(mor)
    assert file_diff(table, start_snap, mor_snap) == ([], [])  # no data file changed
    assert [Path(p).name for p in delete_files(table, mor_snap)] == [
        Path(p).name for p in table.inspect.delete_files().column("file_path").to_pylist()
    ]
    assert sorted(rows_by_key(read_snapshot(table), ("id",))) == [
        (r["id"],) for r in rows if r["id"] != rows[1]["id"]
    ]
    assert table.inspect.delete_files().column("content").to_pylist() == [1]
    # a file diff would see no change at all (the data file is still live), so it must refuse
    with pytest.raises(DeleteFilesError) as caught:
        diff_snapshots(table, start)
    message = str(caught.value)
    assert caught.value.snapshot_id == mor and len(caught.value.delete_files) == 1
    assert f"snapshot {mor} of shop.products carries 1 delete file" in message
    assert "pos-delete-" in message and "copy-on-write" in message
    assert "rewrite_data_files" in message
    table.append(to_arrow(table, gen.products(1)))
    with pytest.raises(DeleteFilesError):  # the start of a range may not carry them either
        diff_snapshots(table, mor)
    with pytest.raises(DeleteFilesError):
        changes_between(table, None, net_changes=False)
    # snapshots before the merge-on-read delete still diff
    assert changes_between(table, None, start).counts() == {"c": 20, "u": 0, "d": 0}


def test_a_consumer_meeting_delete_files_keeps_its_checkpoint_and_can_bootstrap(
    products: tuple[Table, list[Row]], tmp_path: Path
) -> None:
    table, _ = products
    path = tmp_path / "checkpoint.json"
    consumer = SnapshotConsumer(table, path)
    consumer.poll()
    before = path.read_text()
    mor = commit_position_deletes(table, row_positions(table, "id", {1}))
    handled: list[Any] = []
    with pytest.raises(DeleteFilesError, match="bootstrap"):
        consumer.poll(handled.append)
    assert handled == [] and path.read_text() == before
    events = consumer.bootstrap()  # a scan applies the delete file
    assert len(events) == 19 and (1,) not in {e.key for e in events}
    assert consumer.position == mor


# --------------------------------------------------------------------------- net folding


def _ev(op: str, key: int, before: Row | None, after: Row | None, snap: int) -> ChangeEvent:
    return ChangeEvent(op, (key,), before, after, {"snapshot_id": snap}, float(snap), None)  # type: ignore[arg-type]


def test_collapse_to_net_keeps_the_first_before_and_the_last_after() -> None:
    a, b, c = {"v": 1}, {"v": 2}, {"v": 3}
    events = [
        _ev("c", 1, None, a, 1), _ev("u", 1, a, b, 2),                        # c+u -> c(b)
        _ev("c", 2, None, a, 1), _ev("d", 2, a, None, 3),                     # c+d -> nothing
        _ev("u", 3, a, b, 1), _ev("u", 3, b, c, 4),                           # u+u -> u(a->c)
        _ev("u", 4, a, b, 2), _ev("d", 4, b, None, 5),                        # u+d -> d(a)
        _ev("d", 5, a, None, 1), _ev("c", 5, None, b, 6),                     # d+c -> u(a->b)
        _ev("d", 6, a, None, 1), _ev("c", 6, None, {"v": 1}, 7),              # d+c same -> nothing
        _ev("u", 7, a, b, 1), _ev("u", 7, b, {"v": 1}, 8),                    # u back -> nothing
    ]  # fmt: skip
    net = collapse_to_net(events)
    assert [(e.op, e.key, e.before, e.after) for e in net] == [
        ("c", (1,), None, b),
        ("u", (3,), a, c),
        ("d", (4,), a, None),
        ("u", (5,), a, b),
    ]
    assert [e.source["snapshot_id"] for e in net] == [2, 4, 5, 6]
    assert [e.commit_ts for e in net] == [2.0, 4.0, 5.0, 6.0]


def test_event_rows_show_old_and_new_values_of_updated_columns() -> None:
    before = {"id": 1, "p": Decimal("1.50"), "n": "x"}
    after = {"id": 1, "p": Decimal("2.00"), "n": "x"}
    gone = {"id": 2, "p": None, "n": "y"}
    source = {"snapshot_id": 9}
    rows = event_rows(
        [
            ChangeEvent("u", (1,), before, after, source, None, None),
            ChangeEvent("d", (2,), gone, None, source, None, None),
        ]
    )
    assert rows == [
        {"op": "u", "key": "1", "snapshot": 9, "id": 1, "p": "1.50 → 2.00", "n": "x"},
        {"op": "d", "key": "2", "snapshot": 9, "id": 2, "p": None, "n": "y"},
    ]


def test_snapshot_info_is_json_friendly(products: tuple[Table, list[Row]]) -> None:
    table, _ = products
    info = snapshot_info(table, _sid(table))
    json.dumps(info)
    assert info["operation"] == "append" and info["parent_snapshot_id"] is None
    assert info["summary"]["added-records"] == "20"
    assert dt.datetime.fromisoformat(info["timestamp"]).tzinfo is not None
    with pytest.raises(SnapshotExpiredError):
        snapshot_info(table, 12345)


# --------------------------------------------------------------------------- consumer


def test_the_consumer_resumes_from_an_atomically_written_checkpoint(
    products: tuple[Table, list[Row]], gen: EcommerceGenerator, tmp_path: Path
) -> None:
    table, rows = products
    path = tmp_path / "state" / "checkpoint.json"
    first = SnapshotConsumer(table, path)
    assert first.position is None and not path.exists()
    log = first.poll()
    assert log.counts() == {"c": 20, "u": 0, "d": 0}
    stored = json.loads(path.read_text())
    assert stored["source"] == f"Iceberg table with UUID {table.metadata.table_uuid}"
    saved = stored["position"]
    assert saved["snapshot_id"] == _sid(table) == first.position
    assert saved["table"] == "shop.products"
    assert saved["table_uuid"] == str(table.metadata.table_uuid)
    assert sorted(p.name for p in path.parent.iterdir()) == ["checkpoint.json"]  # no temp file
    empty = first.poll()
    assert (
        empty.diffs == []
        and json.loads(path.read_text())["position"]["snapshot_id"] == first.position
    )
    table.upsert(to_arrow(table, [_changed(gen, rows[0]), *gen.products(1)]))
    table.delete("id = 2")
    second = SnapshotConsumer(table.refresh(), path)
    assert second.position == first.position
    resumed = second.poll()
    assert resumed.from_snapshot_id == first.position
    assert [(e.op, e.key) for e in resumed.events] == [("u", (1,)), ("d", (2,)), ("c", (21,))]
    assert Checkpoint.load(path) == second.checkpoint


def test_a_failing_handler_leaves_the_checkpoint_and_the_range_is_delivered_again(
    products: tuple[Table, list[Row]], gen: EcommerceGenerator, tmp_path: Path
) -> None:
    table, _ = products
    path = tmp_path / "checkpoint.json"
    consumer = SnapshotConsumer(table, path, start="latest")
    before = path.read_text()
    table.append(to_arrow(table, gen.products(2)))

    def broken(log: Any) -> None:
        raise RuntimeError("sink down")

    with pytest.raises(RuntimeError, match="sink down"):
        consumer.poll(broken)
    assert path.read_text() == before
    seen: list[Any] = []
    log = consumer.poll(seen.append)
    assert seen == [log] and [e.key for e in log.events] == [(21,), (22,)]
    assert consumer.position == _sid(table)


def test_start_latest_checkpoints_the_current_snapshot_at_once(
    products: tuple[Table, list[Row]], gen: EcommerceGenerator, tmp_path: Path
) -> None:
    table, _ = products
    path = tmp_path / "checkpoint.json"
    SnapshotConsumer(table, path, start="latest")
    assert Checkpoint.load(path).snapshot_id == _sid(table)  # type: ignore[union-attr]
    table.append(to_arrow(table, gen.products(1)))
    restarted = SnapshotConsumer(table, path, start="latest")  # the file wins over `start`
    assert [e.key for e in restarted.poll().events] == [(21,)]
    with pytest.raises(ValueError, match="'earliest' or 'latest'"):
        SnapshotConsumer(table, tmp_path / "x.json", start="newest")  # type: ignore[arg-type]


def test_a_checkpoint_of_another_table_or_a_broken_one_is_refused(
    catalog: SqlCatalog, products: tuple[Table, list[Row]], tmp_path: Path
) -> None:
    table, _ = products
    path = tmp_path / "checkpoint.json"
    SnapshotConsumer(table, path).poll()
    catalog.drop_table("shop.products")
    recreated = create_table(catalog, "shop.products", generated_schema("products"))
    with pytest.raises(CheckpointError, match=r"belongs to 'Iceberg table with UUID .*delete it"):
        SnapshotConsumer(recreated, path)
    path.write_text("{not json")
    with pytest.raises(CheckpointError, match=r"not a readable checkpoint.*delete it"):
        SnapshotConsumer(recreated, path)
    JsonCheckpoint(path, f"Iceberg table with UUID {recreated.metadata.table_uuid}").save({})
    with pytest.raises(CheckpointError, match=r"not an Iceberg consumer checkpoint.*delete it"):
        SnapshotConsumer(recreated, path)


def test_bootstrap_reads_the_current_snapshot_and_moves_the_checkpoint(
    products: tuple[Table, list[Row]], gen: EcommerceGenerator, tmp_path: Path
) -> None:
    table, rows = products
    path = tmp_path / "checkpoint.json"
    consumer = SnapshotConsumer(table, path)
    consumer.poll()
    table.upsert(to_arrow(table, [_changed(gen, rows[0])]))
    current = _sid(table)
    table.maintenance.expire_snapshots().by_ids(
        [s.snapshot_id for s in table.snapshots() if s.snapshot_id != current]
    ).commit()
    with pytest.raises(SnapshotExpiredError):
        consumer.poll()
    got: list[list[ChangeEvent]] = []
    events = consumer.bootstrap(got.append)
    assert got == [events] and {e.op for e in events} == {"r"} and len(events) == 20
    assert rebuild_from_events(events) == rows_by_key(read_snapshot(table), ("id",))
    assert consumer.position == current == Checkpoint.load(path).snapshot_id  # type: ignore[union-attr]
    assert consumer.poll().events == []


# --------------------------------------------------------------------------- generated table


def _event(op: str, key: int, before: Row | None, after: Row | None) -> ChangeEvent:
    return ChangeEvent(op, (key,), before, after, source={}, commit_ts=0.0, observed_ts=None)


def test_mismatches_name_lost_extra_repeated_and_wrong_events() -> None:
    old, new = {"id": 1, "v": 1}, {"id": 1, "v": 2}
    expected = expected_changes({(1,): old, (2,): {"id": 2}}, {(1,): new, (3,): {"id": 3}})
    assert {k: v[0] for k, v in expected.items()} == {(1,): "u", (2,): "d", (3,): "c"}
    right = [_event("u", 1, old, new), _event("d", 2, {"id": 2}, None)]
    right.append(_event("c", 3, None, {"id": 3}))
    assert mismatches(right, expected) == []
    wrong = [_event("u", 1, old, old), _event("c", 3, None, {"id": 3}), _event("c", 3, None, {})]
    wrong.append(_event("c", 4, None, {"id": 4}))
    problems = mismatches(wrong, expected)
    assert "key (3,): 2 events ['c', 'c'], expected 1" in problems
    assert "key (2,): no event, expected op 'd' (lost)" in problems
    assert "key (4,): unexpected 'c' event (nothing changed)" in problems
    assert any(p.startswith("key (1,): after") for p in problems), problems


def test_the_generated_table_records_what_each_write_should_change(
    generated: GeneratedIcebergTable,
) -> None:
    writes = [
        generated.upsert(3, 1, 2),
        generated.delete_below("stock", 100),
        generated.overwrite_range(16, 20, 2, 1, 1),
        *generated.history(1, ("update", "delete", "insert original")),
        *generated.round(random.Random(5), "round"),
        generated.append(2),
    ]
    assert [w.operations for w in writes[:1]] == [["overwrite", "append", "append"]]
    assert len(generated.writes) == 1 + len(writes) and generated.last_write is writes[-1]
    for write in writes:
        log = changes_between(generated.table, write.before, write.after)
        assert mismatches(log.events, write.expected) == [], write
        assert write.new_snapshots[-1] == write.after and write.metadata_commits == 1
    assert writes[-1].after == generated.snapshot_id
    assert _shape(diff_snapshots(generated.table, writes[0].before).events) == _expected(
        rows_by_key(generated.generated, ("id",)), generated.rows
    )
    assert generated.current_rows() == generated.rows
    assert generated.original(1) == generated.generated[0]
    assert (
        repr(generated)
        == f"Iceberg shop.products ({len(generated.rows)} rows, snapshot {generated.snapshot_id})"
    )
    assert repr(writes[-1]).startswith("Write(append 2 new products: ")
    with pytest.raises(ValueError, match="unknown writes"):
        generated.history(1, ("upsert",))


def test_a_merge_on_read_delete_and_expiry_are_recorded(generated: GeneratedIcebergTable) -> None:
    write = generated.delete_positions([2, 3])
    assert set(write.expected) == {(2,), (3,)} and write.operations == ["delete"]
    assert [r["content"] for r in generated.live_delete_files()] == [1]
    assert generated.current_rows() == generated.rows
    expired, kept = generated.expire_all_but_current()
    assert len(expired) == 1 and kept == [generated.snapshot_id]


def test_consumer_runs_record_each_poll_and_resume_from_the_checkpoint(
    generated: GeneratedIcebergTable, tmp_path: Path
) -> None:
    run = ConsumerRun(generated, tmp_path / "checkpoint.json")
    first = run.start()
    assert first.changelog.counts() == {"c": 20, "u": 0, "d": 0}
    assert run.started_at == generated.snapshot_id == run.saved().snapshot_id  # type: ignore[union-attr]
    generated.round(random.Random(1), "one")
    run.poll()
    run.stop()
    generated.round(random.Random(2), "two")
    resumed = run.restart("consumer 2")
    assert run.restarted_at == run.stopped_at and resumed.consumer == "consumer 2"
    assert all(mismatches(p.changelog.events, p.expected) == [] for p in run.polls)
    assert rebuild_from_events(run.delivered) == generated.current_rows()
    assert repr(run) == f"ConsumerRun(consumer 2 at {generated.snapshot_id}, 3 polls)"


def test_a_warehouse_drops_its_tables_when_closed(tmp_path: Path) -> None:
    warehouse = open_warehouse(tmp_path)
    assert repr(warehouse) == "SQL catalog 'cdc' (sqlite)"
    assert "warehouse" in warehouse.describe()
    create_table(warehouse.catalog, "ns.t", generated_schema("products"))
    warehouse.close()
    reopened = open_catalog(tmp_path / "warehouse")
    try:
        assert reopened.list_namespaces() == []
    finally:
        reopened.engine.dispose()


# --------------------------------------------------------------------------- benchmark


def test_the_benchmark_reports_diff_throughput_and_latency_trends(tmp_path: Path) -> None:
    result = iceberg_bench.run(rows=200, upserts=3, batch=10, workdir=tmp_path)
    diff = result["diff"]
    assert diff["net"]["events"] == diff["upserted_rows"] == 2 + 1
    assert diff["per_snapshot"]["events"] == 2 * 2 + 1  # updates read as d + c per snapshot
    assert diff["net"]["rows_read"] > 0 and diff["net"]["rows_per_second"] > 0
    keep = result["upsert_latency"]["keep_snapshots"]
    expire = result["upsert_latency"]["expire_each"]
    assert len(keep["latencies"]) == len(expire["latencies"]) == 3
    assert expire["snapshots_kept"] == 1 < keep["snapshots_kept"]
    text = iceberg_bench.format_report(result)
    assert "rows/s" in text and "keep_snapshots" in text and "expire_each" in text
    assert list(tmp_path.iterdir()) == []  # the temporary warehouse is removed
    with pytest.raises(ValueError, match="changed_fraction"):
        iceberg_bench.run(rows=0)
