"""Steps for features/iceberg/snapshot_cdc.feature: changes derived by diffing Iceberg snapshots.

Every scenario gets its own SQL catalog and warehouse folder under ``tmp_path``: a SQLite
file by default; with ``CDC_ICEBERG_CATALOG_URI`` set (e.g. a PostgreSQL URL) a catalog with a
name of its own in that database, whose tables are dropped afterwards. The steps keep an
in-memory model of the table (key -> row) that every write updates; what a write *should*
have changed is the per-key difference of the model before and after it, and the derived
changelog is checked against that, key by key.
"""

from __future__ import annotations

import itertools
import os
import random
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.table import Table
from pytest_bdd import given, parsers, then, when

from cdc_support.checks.integrity import canonical_row, rebuild_from_events
from cdc_support.events import ChangeEvent
from cdc_support.iceberg import (
    CATALOG_URI_ENV,
    Changelog,
    Checkpoint,
    DeleteFilesError,
    SnapshotConsumer,
    SnapshotExpiredError,
    changes_between,
    collapse_to_net,
    commit_position_deletes,
    create_table,
    event_rows,
    generated_schema,
    open_catalog,
    read_snapshot,
    row_positions,
    rows_by_key,
    snapshot_events,
    snapshot_info,
    to_arrow,
)
from cdc_support.iceberg.catalog import redact_uri
from cdc_support.iceberg.files import file_diff
from cdc_support.workload import KEY_COLUMNS, EcommerceGenerator
from pytest_cdc import evidence
from steps.common import assert_tables_equal

Key = tuple[Any, ...]
Row = dict[str, Any]
Expected = dict[Key, tuple[str, Row | None, Row | None]]

TABLE = "shop.products"


# --------------------------------------------------------------------------- scenario state


@dataclass
class Write:
    """One write: the snapshots around it and the per-key changes it should have made."""

    description: str
    before: int | None
    after: int
    new_snapshots: list[int]
    operations: list[str]
    metadata_commits: int
    expected: Expected

    def __repr__(self) -> str:
        return f"Write({self.description}: {self.before} -> {self.after})"


@dataclass
class Poll:
    """What one consumer poll delivered, and what it should have delivered."""

    consumer: str
    changelog: Changelog
    expected: Expected

    def __repr__(self) -> str:
        return f"Poll({self.consumer}: {self.changelog!r})"


@dataclass
class IcebergScene:
    """The scenario's catalog, table, generator, table model and what was read from it."""

    catalog: SqlCatalog
    table: Table
    key: tuple[str, ...]
    gen: EcommerceGenerator
    generated: list[Row]
    model: dict[Key, Row]
    workdir: Path
    writes: list[Write] = field(default_factory=list)
    noted: int | None = None
    range_start: int | None = None
    consumer: SnapshotConsumer | None = None
    consumer_name: str = "consumer 1"
    consumer_start: int | None = None
    consumed_model: dict[Key, Row] = field(default_factory=dict)
    polls: list[Poll] = field(default_factory=list)
    delivered: list[ChangeEvent] = field(default_factory=list)
    last_log: Changelog | None = None
    stopped_at: int | None = None
    restarted_at: int | None = None

    @property
    def checkpoint_path(self) -> Path:
        """The consumer's checkpoint file."""
        return self.workdir / "consumer-checkpoint.json"

    @property
    def last_write(self) -> Write:
        """The most recent write (a step error if there was none)."""
        assert self.writes, "no write was committed in this scenario"
        return self.writes[-1]

    def current_rows(self) -> dict[Key, Row]:
        """The table's current rows by key, read back from Iceberg."""
        return rows_by_key(read_snapshot(self.table), self.key)

    def __repr__(self) -> str:
        snap = self.table.current_snapshot()
        at = snap.snapshot_id if snap else None
        return f"Iceberg {TABLE} ({len(self.model)} rows, snapshot {at})"


@dataclass(frozen=True)
class IcebergWarehouse:
    """This scenario's SQL catalog and the folder holding its warehouse and checkpoints."""

    catalog: SqlCatalog
    folder: Path
    uri: str

    def describe(self) -> str:
        """Catalog name, database (password hidden) and warehouse, for the report."""
        return (
            f"SQL catalog {self.catalog.name!r} in {self.catalog.engine.dialect.name} "
            f"({redact_uri(self.uri)}), warehouse {self.folder / 'warehouse'}"
        )

    def __repr__(self) -> str:
        return f"SQL catalog {self.catalog.name!r} ({self.catalog.engine.dialect.name})"


def _drop_all(catalog: SqlCatalog) -> None:
    """Drop this catalog's tables and namespaces (its rows in a shared catalog database)."""
    for namespace in catalog.list_namespaces():
        for identifier in catalog.list_tables(namespace):
            catalog.drop_table(identifier)
        catalog.drop_namespace(namespace)


@pytest.fixture
def iceberg_warehouse(tmp_path: Path) -> Iterator[IcebergWarehouse]:
    """A SQL catalog with its warehouse under this scenario's ``tmp_path``.

    SQLite file by default; ``CDC_ICEBERG_CATALOG_URI`` names another catalog database
    (PostgreSQL), shared by scenarios that keep apart by catalog name.
    """
    warehouse = tmp_path / "warehouse"
    external = os.environ.get(CATALOG_URI_ENV) or None
    uri = external or f"sqlite:///{warehouse / 'catalog.db'}"
    name = f"cdc_{uuid.uuid4().hex[:12]}" if external else "cdc"
    catalog = open_catalog(warehouse, uri=uri, name=name)
    try:
        yield IcebergWarehouse(catalog, tmp_path, uri)
    finally:
        try:
            _drop_all(catalog)
        finally:
            catalog.engine.dispose()


# --------------------------------------------------------------------------- helpers


def _same(a: Row | None, b: Row | None) -> bool:
    if a is None or b is None:
        return a is b
    return canonical_row(a) == canonical_row(b)


def _expected_changes(before: dict[Key, Row], after: dict[Key, Row]) -> Expected:
    """Per key, how ``before`` became ``after`` (unchanged keys left out)."""
    changes: Expected = {}
    for key in sorted(before.keys() | after.keys()):
        old, new = before.get(key), after.get(key)
        if old is None and new is not None:
            changes[key] = ("c", None, new)
        elif new is None and old is not None:
            changes[key] = ("d", old, None)
        elif not _same(old, new):
            changes[key] = ("u", old, new)
    return changes


def _mismatches(events: Sequence[ChangeEvent], expected: Expected) -> list[str]:
    """Per-key differences between derived events and expected changes; empty if equal."""
    problems: list[str] = []
    by_key: dict[Key, list[ChangeEvent]] = {}
    for event in events:
        by_key.setdefault(event.key, []).append(event)
    for key, found in by_key.items():
        if len(found) > 1:
            problems.append(f"key {key}: {len(found)} events {[e.op for e in found]}, expected 1")
    for key, (op, before, after) in expected.items():
        found = by_key.get(key)
        if not found:
            problems.append(f"key {key}: no event, expected op {op!r} (lost)")
            continue
        event = found[0]
        if event.op != op:
            problems.append(f"key {key}: op {event.op!r}, expected {op!r}")
        if not _same(event.before, before):
            problems.append(f"key {key}: before {event.before}, expected {before}")
        if not _same(event.after, after):
            problems.append(f"key {key}: after {event.after}, expected {after}")
    for key in by_key.keys() - expected.keys():
        problems.append(f"key {key}: unexpected {by_key[key][0].op!r} event (nothing changed)")
    return problems


def _attach_changelog(scene: IcebergScene, log: Changelog, title: str) -> None:
    """Snapshot summaries (JSON), data files added/removed and change rows (HTML tables)."""
    evidence.attach_json(
        f"snapshot summaries: {title}", [snapshot_info(scene.table, s) for s in log.snapshot_ids]
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


def _commit(
    scene: IcebergScene,
    description: str,
    action: Callable[[Table], object],
    after_model: dict[Key, Row],
) -> Write:
    """Run one pyiceberg write and record its snapshots and expected per-key changes."""
    table = scene.table
    before = table.current_snapshot()
    known = {s.snapshot_id for s in table.snapshots()}
    commits_before = len(table.metadata.metadata_log)
    action(table)
    scene.table = table.refresh()
    new = sorted(
        (s for s in scene.table.snapshots() if s.snapshot_id not in known),
        key=lambda s: s.sequence_number,
    )
    assert new, f"the write '{description}' committed no snapshot"
    write = Write(
        description=description,
        before=before.snapshot_id if before else None,
        after=new[-1].snapshot_id,
        new_snapshots=[s.snapshot_id for s in new],
        operations=[s.summary.operation.value if s.summary else "?" for s in new],
        metadata_commits=len(scene.table.metadata.metadata_log) - commits_before,
        expected=_expected_changes(scene.model, after_model),
    )
    scene.model = after_model
    scene.writes.append(write)
    evidence.attach_json(
        f"write: {description}",
        {
            "snapshots": [snapshot_info(scene.table, s) for s in write.new_snapshots],
            "expected changes": {
                ", ".join(map(str, k)): op for k, (op, _, _) in write.expected.items()
            },
        },
    )
    return write


def _new_products(scene: IcebergScene, count: int) -> list[Row]:
    keys = [k[0] for k in scene.model] + [k[0] for w in scene.writes for k in w.expected]
    scene.gen.reserve_keys_above("products", max(keys, default=0))
    return scene.gen.products(count)


def _changed(scene: IcebergScene, row: Row) -> Row:
    return {**row, **scene.gen.changes("products", row)}


def _upsert(scene: IcebergScene, rows: list[Row], description: str) -> Write:
    after = dict(scene.model)
    after.update({(r["id"],): r for r in rows})
    return _commit(scene, description, lambda t: t.upsert(to_arrow(t, rows)), after)


def _append(scene: IcebergScene, rows: list[Row], description: str) -> Write:
    after = dict(scene.model)
    after.update({(r["id"],): r for r in rows})
    return _commit(scene, description, lambda t: t.append(to_arrow(t, rows)), after)


def _delete_key(scene: IcebergScene, key: int) -> Write:
    after = {k: v for k, v in scene.model.items() if k != (key,)}
    return _commit(scene, f"delete product {key}", lambda t: t.delete(f"id = {key}"), after)


def _poll(scene: IcebergScene) -> Poll:
    """Poll the consumer; the expected changes are the model's since the last poll."""
    assert scene.consumer is not None, "no consumer is running"
    delivered: list[Changelog] = []
    log = scene.consumer.poll(delivered.append)
    assert delivered == [log] or not log.diffs, "the handler did not get the changelog"
    poll = Poll(scene.consumer_name, log, _expected_changes(scene.consumed_model, scene.model))
    scene.polls.append(poll)
    scene.delivered.extend(log.events)
    scene.consumed_model = dict(scene.model)
    _attach_changelog(scene, log, f"{scene.consumer_name} poll {len(scene.polls)}")
    return poll


# --------------------------------------------------------------------------- given


@given(
    parsers.parse(
        "an Iceberg products table keyed by id, with {count:d} products generated "
        "with seed {seed:d}"
    ),
    target_fixture="iceberg",
)
def iceberg_products(iceberg_warehouse: IcebergWarehouse, count: int, seed: int) -> IcebergScene:
    """Create the table (identifier field id) and append the generated products."""
    catalog = iceberg_warehouse.catalog
    table = create_table(catalog, TABLE, generated_schema("products"))
    gen = EcommerceGenerator(seed)
    rows = gen.products(count)
    key = KEY_COLUMNS["products"]
    scene = IcebergScene(catalog, table, key, gen, rows, {}, iceberg_warehouse.folder)
    _append(scene, rows, f"append {count} generated products")
    evidence.attach_html(
        "first generated products", evidence.table_html(f"products (seed {seed})", rows[:10])
    )
    evidence.attach_json("table schema", {"schema": str(scene.table.schema())})
    evidence.attach_text("catalog", iceberg_warehouse.describe())
    return scene


@given("an incremental consumer that has read the table up to its current snapshot")
def consumer_caught_up(iceberg: IcebergScene) -> None:
    """A consumer with no checkpoint yet reads every row as an insert, then checkpoints."""
    iceberg.consumer = SnapshotConsumer(iceberg.table, iceberg.checkpoint_path)
    _poll(iceberg)
    iceberg.consumer_start = iceberg.consumer.position


# --------------------------------------------------------------------------- when: writes


@when(parsers.parse("I append {count:d} new products"))
def append_products(iceberg: IcebergScene, count: int) -> None:
    """Append new keys: one append snapshot."""
    _append(iceberg, _new_products(iceberg, count), f"append {count} new products")


@when(
    parsers.parse("I upsert {changed:d} changed, {unchanged:d} unchanged and {new:d} new products")
)
def upsert_products(iceberg: IcebergScene, changed: int, unchanged: int, new: int) -> None:
    """Upsert on the identifier field: changed versions, identical rows and new keys."""
    current = [iceberg.model[k] for k in sorted(iceberg.model)]
    rows = [_changed(iceberg, r) for r in current[:changed]]
    rows += [dict(r) for r in current[changed : changed + unchanged]]
    rows += _new_products(iceberg, new)
    _upsert(iceberg, rows, f"upsert {changed} changed, {unchanged} unchanged, {new} new")


@when(parsers.parse("I delete the products with stock under {limit:d}"))
def delete_by_filter(iceberg: IcebergScene, limit: int) -> None:
    """Delete by a filter on a non-key column."""
    after = {k: r for k, r in iceberg.model.items() if r["stock"] >= limit}
    _commit(iceberg, f"delete stock < {limit}", lambda t: t.delete(f"stock < {limit}"), after)


@when(
    parsers.re(
        r"I overwrite the products with id (?P<low>\d+) to (?P<high>\d+) by (?P<changed>\d+) "
        r"changed, (?P<unchanged>\d+) unchanged and (?P<new>\d+) new products?"
    ),
    converters={"low": int, "high": int, "changed": int, "unchanged": int, "new": int},
)
def overwrite_with_filter(
    iceberg: IcebergScene, low: int, high: int, changed: int, unchanged: int, new: int
) -> None:
    """Overwrite: delete the rows matching the filter, then append the given rows."""
    lo, hi = low, high
    n_changed, n_unchanged = changed, unchanged
    matching = [iceberg.model[(k,)] for k in range(lo, hi + 1) if (k,) in iceberg.model]
    rows = [_changed(iceberg, r) for r in matching[:n_changed]]
    rows += [dict(r) for r in matching[n_changed : n_changed + n_unchanged]]
    rows += _new_products(iceberg, new)
    after = {k: r for k, r in iceberg.model.items() if not lo <= k[0] <= hi}
    after.update({(r["id"],): r for r in rows})
    _commit(
        iceberg,
        f"overwrite id {lo}..{hi}",
        lambda t: t.overwrite(to_arrow(t, rows), overwrite_filter=f"id >= {lo} and id <= {hi}"),
        after,
    )


HISTORIES: dict[str, tuple[str, ...]] = {
    "inserted, then updated": ("insert", "update"),
    "inserted, updated, then deleted": ("insert", "update", "delete"),
    "updated twice": ("update", "update"),
    "updated, then deleted": ("update", "delete"),
    "deleted, then inserted with new values": ("delete", "insert new values"),
    "deleted, then inserted unchanged": ("delete", "insert original"),
}


@when(parsers.parse("product {key:d} is {history}, one commit per write"))
def product_history(iceberg: IcebergScene, key: int, history: str) -> None:
    """Each write of the history is its own pyiceberg commit (append, upsert or delete)."""
    if history not in HISTORIES:
        raise AssertionError(f"unknown history {history!r}; the steps know {sorted(HISTORIES)}")
    snap = iceberg.table.current_snapshot()
    iceberg.range_start = snap.snapshot_id if snap else None
    original = next((r for r in iceberg.generated if r["id"] == key), None)
    for write in HISTORIES[history]:
        current = iceberg.model.get((key,))
        if write == "insert":
            _append(iceberg, [iceberg.gen.product(key=key)], f"insert product {key}")
        elif write == "update":
            assert current is not None, f"product {key} does not exist to update"
            _upsert(iceberg, [_changed(iceberg, current)], f"update product {key}")
        elif write == "delete":
            _delete_key(iceberg, key)
        elif write == "insert new values":
            assert original is not None
            _append(iceberg, [_changed(iceberg, original)], f"re-insert product {key} changed")
        elif write == "insert original":
            assert original is not None
            _append(iceberg, [dict(original)], f"re-insert product {key} unchanged")


@when("I note the current snapshot")
def note_snapshot(iceberg: IcebergScene) -> None:
    """Remember the snapshot id (and so its timestamp) for time travel."""
    snap = iceberg.table.current_snapshot()
    assert snap is not None
    iceberg.noted = snap.snapshot_id
    evidence.attach_json("noted snapshot", snapshot_info(iceberg.table, snap))


@when("every snapshot but the current one is expired")
def expire_all_but_current(iceberg: IcebergScene) -> None:
    """``table.maintenance.expire_snapshots().by_ids(...)``: gone from the metadata."""
    table = iceberg.table
    current = table.current_snapshot()
    assert current is not None
    old = [s.snapshot_id for s in table.snapshots() if s.snapshot_id != current.snapshot_id]
    table.maintenance.expire_snapshots().by_ids(old).commit()
    iceberg.table = table.refresh()
    evidence.attach_json(
        "expired snapshots",
        {"expired": old, "kept": [s.snapshot_id for s in iceberg.table.snapshots()]},
    )


@when(
    parsers.parse(
        "another engine deletes the products with id {first:d} and {second:d} merge-on-read, "
        "writing a position delete file"
    )
)
def merge_on_read_delete(iceberg: IcebergScene, first: int, second: int) -> None:
    """A position delete file and a delete snapshot, as Spark writes them (data files kept)."""
    keys = {first, second}
    positions = row_positions(iceberg.table, "id", keys)
    assert sum(len(p) for p in positions.values()) == len(keys), positions
    after = {k: r for k, r in iceberg.model.items() if k[0] not in keys}
    _commit(
        iceberg,
        f"merge-on-read delete of id {first} and {second}",
        lambda t: commit_position_deletes(t, positions),
        after,
    )
    deletes = iceberg.table.inspect.delete_files().select(["content", "file_path", "record_count"])
    evidence.attach_html(
        "delete files",
        evidence.table_html(
            "live delete files (content 1 = position deletes)",
            [{**r, "file_path": Path(r["file_path"]).name} for r in deletes.to_pylist()],
        ),
    )


def _round(iceberg: IcebergScene, rng: random.Random, label: str) -> None:
    """Upsert 2 changed + 1 new product, delete 1 product, append 1 product."""
    keys = sorted(iceberg.model)
    changed = [_changed(iceberg, iceberg.model[k]) for k in rng.sample(keys, 2)]
    _upsert(iceberg, changed + _new_products(iceberg, 1), f"{label}: upsert")
    victim = rng.choice(sorted(iceberg.model))
    _delete_key(iceberg, victim[0])
    _append(iceberg, _new_products(iceberg, 1), f"{label}: append")


@when(
    parsers.parse(
        "{rounds:d} rounds of writes with seed {seed:d} are committed, "
        "the consumer polling after each"
    )
)
def rounds_with_polls(iceberg: IcebergScene, rounds: int, seed: int) -> None:
    """Each round is three commits (upsert, delete, append); a poll follows each round."""
    rng = random.Random(seed)
    for i in range(1, rounds + 1):
        _round(iceberg, rng, f"round {i} (seed {seed})")
        _poll(iceberg)


@when("the consumer is stopped")
def stop_consumer(iceberg: IcebergScene) -> None:
    """Drop the consumer object; only its checkpoint file remains."""
    assert iceberg.consumer is not None
    iceberg.stopped_at = iceberg.consumer.position
    iceberg.consumer = None


@when(parsers.parse("{rounds:d} more rounds of writes with seed {seed:d} are committed"))
def rounds_without_polls(iceberg: IcebergScene, rounds: int, seed: int) -> None:
    """Writes while no consumer runs."""
    rng = random.Random(seed)
    for i in range(1, rounds + 1):
        _round(iceberg, rng, f"round {i} (seed {seed}), no consumer")


@when("a new consumer starts from the same checkpoint file and polls")
def restart_consumer(iceberg: IcebergScene) -> None:
    """A fresh table handle from the catalog and a fresh consumer on the same file."""
    evidence.attach_text("checkpoint file", iceberg.checkpoint_path.read_text(encoding="utf-8"))
    table = iceberg.catalog.load_table(TABLE)
    iceberg.consumer = SnapshotConsumer(table, iceberg.checkpoint_path)
    iceberg.consumer_name = "consumer 2"
    iceberg.restarted_at = iceberg.consumer.position
    _poll(iceberg)


# --------------------------------------------------------------------------- then: changelogs


def _last_write_changes(iceberg: IcebergScene, *, net: bool = True) -> Changelog:
    write = iceberg.last_write
    log = changes_between(iceberg.table, write.before, write.after, net_changes=net)
    mode = "net" if net else "per snapshot"
    _attach_changelog(iceberg, log, f"{write.description} ({mode})")
    return log


@then(
    parsers.parse(
        "the changes since the previous snapshot are {inserts:d} inserts, {updates:d} updates "
        "and {deletes:d} deletes"
    )
)
def changes_counted(iceberg: IcebergScene, inserts: int, updates: int, deletes: int) -> None:
    """Net changes between the snapshot before the write and the one after it."""
    log = _last_write_changes(iceberg)
    iceberg.last_log = log
    assert log.counts() == {"c": inserts, "u": updates, "d": deletes}, log.counts()
    last = iceberg.table.metadata.snapshot_by_id(iceberg.last_write.after)
    assert last is not None
    for event in log.events:
        assert event.source["snapshot_id"] == last.snapshot_id, event.source
        assert event.commit_ts == last.timestamp_ms / 1000, (event.commit_ts, last.timestamp_ms)


@then("each change is what the write did to its key, with before and after images")
def changes_match_write(iceberg: IcebergScene) -> None:
    """Key by key: op, before and after equal the model's change (nothing missing or extra)."""
    assert iceberg.last_log is not None
    problems = _mismatches(iceberg.last_log.events, iceberg.last_write.expected)
    assert not problems, "derived changes differ from the write:\n" + "\n".join(problems)


@then(
    parsers.parse(
        "{carried:d} unchanged rows were carried over into rewritten files and are not reported"
    )
)
def carried_over(iceberg: IcebergScene, carried: int) -> None:
    """Copy-on-write: rows of rewritten files that did not change are dropped by the join."""
    log = iceberg.last_log
    assert log is not None
    removed = sum(f.record_count for f in log.files if f.change == "removed")
    found = sum(d.carried_over for d in log.diffs)
    evidence.attach_json(
        "carried-over rows", {"rows in removed files": removed, "carried over": found}
    )
    assert found == carried, f"{found} rows carried over, expected {carried}"
    reported_unchanged = [e.key for e in log.events if e.op == "u" and _same(e.before, e.after)]
    assert not reported_unchanged, f"unchanged rows reported as updates: {reported_unchanged}"


@then("the previous snapshot's rows with the changes applied equal the current table")
def replay_gives_current(iceberg: IcebergScene) -> None:
    """Old snapshot (time travel) as read events, then the changes -> the current rows."""
    assert iceberg.last_log is not None
    base = snapshot_events(iceberg.table, iceberg.last_write.before)
    rebuilt = rebuild_from_events([*base, *iceberg.last_log.events])
    assert_tables_equal(iceberg.current_rows(), rebuilt, "previous snapshot + changes")


@then(parsers.parse('the upsert committed the snapshots "{operations}" in one metadata commit'))
def upsert_snapshots(iceberg: IcebergScene, operations: str) -> None:
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
def upsert_as_one(iceberg: IcebergScene, updates: int, inserts: int) -> None:
    """Net changes across the whole upsert pair each removed row with its new version."""
    log = _last_write_changes(iceberg)
    keys = [e.key for e in log.events]
    assert len(keys) == len(set(keys)), f"a key appears twice: {keys}"
    assert log.counts() == {"c": inserts, "u": updates, "d": 0}, log.counts()
    problems = _mismatches(log.events, iceberg.last_write.expected)
    assert not problems, "\n".join(problems)


@then(
    parsers.parse(
        "snapshot by snapshot, each of the {count:d} updated products is a delete in the "
        "overwrite and an insert in the next append"
    )
)
def upsert_per_snapshot(iceberg: IcebergScene, count: int) -> None:
    """Per-snapshot changes: the overwrite drops the old row, the append adds the new one."""
    write = iceberg.last_write
    log = _last_write_changes(iceberg, net=False)
    overwrite, append = write.new_snapshots[0], write.new_snapshots[1]
    updated = {k: v for k, v in write.expected.items() if v[0] == "u"}
    assert len(updated) == count, f"{len(updated)} updated keys, expected {count}"
    for key, (_, before, after) in updated.items():
        seen = [(e.op, e.source["snapshot_id"]) for e in log.events if e.key == key]
        assert seen == [("d", overwrite), ("c", append)], f"key {key}: {seen}"
        delete, insert = (e for e in log.events if e.key == key)
        assert _same(delete.before, before) and delete.after is None, delete
        assert _same(insert.after, after) and insert.before is None, insert


NET_OUTCOMES = (
    "an insert of its last version",
    "nothing",
    "an update from the original to its last version",
    "a delete of the original",
)


@then(
    parsers.parse(
        "the net change of product {key:d} over those commits is {net}, "
        "and no other product changed"
    )
)
def net_changes(iceberg: IcebergScene, key: int, net: str) -> None:
    """One diff over the whole range: the original row and the last one decide."""
    log = changes_between(iceberg.table, iceberg.range_start, net_changes=True)
    _attach_changelog(iceberg, log, "net changes over the range")
    iceberg.last_log = log
    events = log.events
    if net == "nothing":
        assert events == [], f"expected no net change, got {[(e.op, e.key) for e in events]}"
        return
    original = next((r for r in iceberg.generated if r["id"] == key), None)
    last = iceberg.model.get((key,))
    expected = {
        "an insert of its last version": ("c", None, last),
        "an update from the original to its last version": ("u", original, last),
        "a delete of the original": ("d", original, None),
    }
    if net not in expected:
        raise AssertionError(f"unknown net outcome {net!r}; the steps know {NET_OUTCOMES}")
    problems = _mismatches(events, {(key,): expected[net]})
    assert not problems, "\n".join(problems)


@then("folding the snapshot-by-snapshot changes gives the same net changes")
def folded_equals_net(iceberg: IcebergScene) -> None:
    """collapse_to_net(per-snapshot events) == the range diff, on op, key, before and after."""
    assert iceberg.last_log is not None
    per_snapshot = changes_between(iceberg.table, iceberg.range_start, net_changes=False)
    _attach_changelog(iceberg, per_snapshot, "snapshot by snapshot over the range")
    assert len(per_snapshot.diffs) == len(iceberg.last_log.snapshot_ids) >= 2
    folded = collapse_to_net(per_snapshot.events)

    def shape(events: Sequence[ChangeEvent]) -> list[tuple[Any, ...]]:
        return [
            (e.op, e.key, e.before and canonical_row(e.before), e.after and canonical_row(e.after))
            for e in events
        ]

    assert shape(folded) == shape(iceberg.last_log.events)


@then(
    parsers.parse(
        "reading the table applies the delete: the products with id {first:d} and {second:d} "
        "are gone, and no data file was added or removed"
    )
)
def merge_on_read_applied(iceberg: IcebergScene, first: int, second: int) -> None:
    """A scan applies delete files; the data files of both snapshots are the same."""
    current = iceberg.current_rows()
    assert (first,) not in current and (second,) not in current, sorted(current)
    assert_tables_equal(iceberg.model, current, "current snapshot vs model")
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
def delete_files_refused(iceberg: IcebergScene) -> None:
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
    assert f"snapshot {write.after} of {TABLE}" in message, message
    for fix in ("rewrite_data_files", "copy-on-write"):
        assert fix in message, f"the error does not name the fix {fix!r}: {message}"


# --------------------------------------------------------------------------- then: time travel


@then(parsers.parse("reading the noted snapshot by its id gives the {count:d} generated products"))
def time_travel_by_id(iceberg: IcebergScene, count: int) -> None:
    """``table.scan(snapshot_id=...)`` reads the table as it was."""
    assert iceberg.noted is not None
    rows = rows_by_key(read_snapshot(iceberg.table, iceberg.noted), iceberg.key)
    assert len(rows) == count, f"{len(rows)} rows in the noted snapshot, expected {count}"
    generated = rows_by_key(iceberg.generated, iceberg.key)
    assert_tables_equal(generated, rows, "noted snapshot vs generated products")


@then("reading the table as of the noted snapshot's timestamp gives the same snapshot")
def time_travel_by_time(iceberg: IcebergScene) -> None:
    """``snapshot_as_of_timestamp``: the latest snapshot at or before that time."""
    assert iceberg.noted is not None
    noted = iceberg.table.snapshot_by_id(iceberg.noted)
    assert noted is not None
    found = iceberg.table.snapshot_as_of_timestamp(noted.timestamp_ms)
    assert found is not None and found.snapshot_id == noted.snapshot_id, (found, noted)
    later = [s for s in iceberg.table.snapshots() if s.sequence_number > noted.sequence_number]
    assert later, "no snapshot was committed after the noted one"
    assert all(s.timestamp_ms > noted.timestamp_ms for s in later), "later snapshots share its ms"
    evidence.attach_json(
        "history", [snapshot_info(iceberg.table, s) for s in iceberg.table.snapshots()]
    )


@then("the current snapshot gives the products after both writes")
def current_after_writes(iceberg: IcebergScene) -> None:
    """The current snapshot equals the model after every write."""
    assert_tables_equal(iceberg.model, iceberg.current_rows(), "current snapshot vs model")
    assert len(iceberg.writes) == 3, [w.description for w in iceberg.writes]


# --------------------------------------------------------------------------- then: consumers


@then("the consumer's next poll fails, naming its expired snapshot and the fix")
def poll_fails_expired(iceberg: IcebergScene) -> None:
    """SnapshotExpiredError names the snapshot and says to re-bootstrap; nothing delivered."""
    consumer = iceberg.consumer
    assert consumer is not None and consumer.position is not None
    delivered: list[Changelog] = []
    with pytest.raises(SnapshotExpiredError) as caught:
        consumer.poll(delivered.append)
    message = str(caught.value)
    evidence.attach_text("error", f"{type(caught.value).__name__}: {message}")
    assert caught.value.snapshot_id == consumer.position
    assert str(consumer.position) in message and "expired" in message, message
    assert "bootstrap" in message, message
    assert delivered == [], "the handler got changes although the poll failed"


@then("the consumer's checkpoint still holds that snapshot")
def checkpoint_unchanged(iceberg: IcebergScene) -> None:
    """A failed poll does not move the checkpoint file."""
    saved = Checkpoint.load(iceberg.checkpoint_path)
    assert saved is not None
    assert saved.snapshot_id == iceberg.consumer_start, (saved, iceberg.consumer_start)


@then(
    parsers.parse(
        "after a bootstrap the consumer holds every current product, and its next poll sees "
        "only the {count:d} products appended since"
    )
)
def bootstrap_then_poll(iceberg: IcebergScene, count: int) -> None:
    """bootstrap(): the current snapshot as read events; the checkpoint moves to it."""
    consumer = iceberg.consumer
    assert consumer is not None
    events = consumer.bootstrap()
    evidence.attach_events("bootstrap read events", events)
    assert {e.op for e in events} == {"r"}, {e.op for e in events}
    assert_tables_equal(iceberg.model, rebuild_from_events(events), "bootstrap vs table")
    current = iceberg.table.current_snapshot()
    assert current is not None
    saved = Checkpoint.load(iceberg.checkpoint_path)
    assert saved is not None and saved.snapshot_id == current.snapshot_id
    iceberg.consumed_model = dict(iceberg.model)
    write = _append(iceberg, _new_products(iceberg, count), f"append {count} new products")
    poll = _poll(iceberg)
    assert poll.changelog.counts() == {"c": count, "u": 0, "d": 0}, poll.changelog.counts()
    problems = _mismatches(poll.changelog.events, write.expected)
    assert not problems, "\n".join(problems)


@then("each poll delivered exactly the changes of its own range, key by key")
def polls_exact(iceberg: IcebergScene) -> None:
    """No loss and no duplicate per key: each poll's events equal the model's changes."""
    summary = []
    problems: list[str] = []
    for index, poll in enumerate(iceberg.polls, start=1):
        found = _mismatches(poll.changelog.events, poll.expected)
        problems += [f"poll {index} ({poll.consumer}): {p}" for p in found]
        summary.append(
            {
                "poll": index,
                "consumer": poll.consumer,
                "from": poll.changelog.from_snapshot_id,
                "to": poll.changelog.to_snapshot_id,
                "snapshots": len(poll.changelog.snapshot_ids),
                "events": poll.changelog.counts(),
                "expected": len(poll.expected),
                "problems": len(found),
            }
        )
    evidence.attach_html("polls", evidence.table_html("consumer polls", summary))
    assert len(iceberg.polls) >= 2, "fewer than two polls"
    assert not problems, "\n".join(problems)


@then("the polls' snapshot ranges follow each other with no gap and no overlap")
def polls_contiguous(iceberg: IcebergScene) -> None:
    """Each poll starts where the previous one (of either consumer) ended."""
    assert iceberg.restarted_at is not None and iceberg.restarted_at == iceberg.stopped_at, (
        f"new consumer started at {iceberg.restarted_at}, old one stopped at {iceberg.stopped_at}"
    )
    polls = [p.changelog for p in iceberg.polls]
    assert polls[0].from_snapshot_id is None
    for previous, current in itertools.pairwise(polls):
        assert current.from_snapshot_id == previous.to_snapshot_id, (previous, current)
    covered = [s for log in polls for s in log.snapshot_ids]
    lineage = sorted(iceberg.table.snapshots(), key=lambda s: s.sequence_number)
    assert covered == [s.snapshot_id for s in lineage], "snapshots missed or read twice"


@then("the rows rebuilt from everything the consumers delivered equal the current table")
def rebuilt_equals_current(iceberg: IcebergScene) -> None:
    """Replaying every delivered event by key gives the table."""
    evidence.attach_events("sample delivered events", iceberg.delivered)
    assert_tables_equal(
        iceberg.current_rows(), rebuild_from_events(iceberg.delivered), "delivered vs table"
    )
