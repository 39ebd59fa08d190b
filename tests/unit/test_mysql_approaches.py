"""The MariaDB approaches behind the source-neutral CaptureApproach interface, with fake
readers and a fake Connect client (no server): restart on the same position file, errors,
schema-change records, connector lifecycle; and the step modules stay sentences."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

import cdc_support.postgres.base as pg_base
from cdc_support import capture
from cdc_support.events import ChangeEvent
from cdc_support.kafka.connect import ConnectorNotFound
from cdc_support.kafka.connector import DebeziumConnector
from cdc_support.mysql.binlog_capture import BinlogReaderApproach
from cdc_support.mysql.binlog_reader import BinlogPosition, PositionStore, SchemaChange
from cdc_support.mysql.debezium import DebeziumBinlogApproach
from cdc_support.mysql.source import MySqlAddress

ROOT = Path(__file__).resolve().parents[2]


def _event(op: str, key: int) -> ChangeEvent:
    after = None if op == "d" else {"id": key}
    return ChangeEvent(op, (key,), None, after, {"pos": key}, None, None)


class FakeReader:
    """Stands in for BinlogReader: a position file, events, schema changes, a running flag."""

    def __init__(self, tables: Sequence[str], store: PositionStore) -> None:
        self.tables = tuple(tables)
        self.store = store
        self.events: list[ChangeEvent] = []
        self.schema_changes: list[SchemaChange] = []
        self.error: BaseException | None = None
        self.running = False
        self.started_at: BinlogPosition | None = None
        self.address = MySqlAddress("127.0.0.1", 3306, "cdc", "secret")
        self.server_id = 4242
        self.schema = "scn_db"

    def start(self) -> FakeReader:
        self.running = True
        self.started_at = self.store.load()
        return self

    def stop(self) -> None:
        self.running = False

    def snapshot(self) -> list[ChangeEvent]:
        return list(self.events)


class FakeReaders:
    """Stands in for the binlog_reader_factory fixture; records how it was called."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.made: list[FakeReader] = []
        self.position_files: list[Path | None] = []

    def __call__(self, tables: Sequence[str], *, position_file: Path | None = None) -> Any:
        self.position_files.append(position_file)
        path = position_file or self.tmp_path / f"position-{len(self.made)}.json"
        self.made.append(FakeReader(tables, PositionStore(path, "binlog of fake for scn_db")))
        return self.made[-1]


def test_the_interface_is_source_neutral_and_still_importable_from_postgres() -> None:
    assert pg_base.CaptureApproach is capture.CaptureApproach
    assert pg_base.Declared is capture.Declared
    assert issubclass(BinlogReaderApproach, capture.CaptureApproach)
    assert issubclass(DebeziumBinlogApproach, capture.CaptureApproach)


def test_a_restarted_reader_resumes_on_the_same_position_file_and_events_add_up(
    tmp_path: Path,
) -> None:
    readers = FakeReaders(tmp_path)
    approach = BinlogReaderApproach("customers", ("id",), make_reader=readers)
    approach.start()
    readers.made[0].events += [_event("c", 1), _event("u", 1)]
    readers.made[0].store.save(BinlogPosition("binlog.000001", 400))
    approach.stop()
    assert approach.position() == BinlogPosition("binlog.000001", 400)
    approach.start()
    readers.made[1].events.append(_event("d", 1))
    assert readers.position_files == [None, tmp_path / "position-0.json"]
    assert readers.made[1].started_at == BinlogPosition("binlog.000001", 400)
    assert [e.op for e in approach.wait_count(3, timeout=1)] == ["c", "u", "d"]
    assert approach.describe()["starts at"] == "binlog.000001:400"
    approach.close()
    assert not any(r.running for r in readers.made)


def test_starting_a_running_reader_again_is_refused(tmp_path: Path) -> None:
    approach = BinlogReaderApproach("customers", ("id",), make_reader=FakeReaders(tmp_path))
    approach.start()
    with pytest.raises(RuntimeError, match="already running"):
        approach.start()


def test_a_failed_reader_is_reported_instead_of_its_events(tmp_path: Path) -> None:
    readers = FakeReaders(tmp_path)
    approach = BinlogReaderApproach("customers", ("id",), make_reader=readers)
    approach.start()
    readers.made[0].error = ConnectionError("lost the server")
    with pytest.raises(RuntimeError, match=r"binlog reader failed: .*lost the server"):
        approach.delivered()


def test_the_readers_schema_changes_are_the_matching_ddl_statements(tmp_path: Path) -> None:
    readers = FakeReaders(tmp_path)
    approach = BinlogReaderApproach("customers", ("id",), make_reader=readers)
    approach.start()
    at = BinlogPosition("binlog.000001", 9)
    readers.made[0].schema_changes += [
        SchemaChange("CREATE TABLE x (id INT)", at, 1.0),
        SchemaChange("ALTER TABLE customers ADD COLUMN tier INT", at, 2.0),
    ]
    changes = approach.schema_changes("ADD COLUMN", timeout=1)
    assert changes.statements == ["ALTER TABLE customers ADD COLUMN tier INT"]
    assert changes.records[0]["position"] == "binlog.000001:9"
    assert repr(changes) == "SchemaChanges(schema changes seen by the reader: 1 statements)"
    assert repr(approach) == "the binlog reader"


class FakeClient:
    """Stands in for ConnectClient: records calls; deleting twice is ConnectorNotFound."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __getattr__(self, method: str) -> Any:
        def call(name: str, **_: Any) -> None:
            self.calls.append(method)
            if method == "delete" and self.calls.count("delete") > 1:
                raise ConnectorNotFound(f"connector {name} not found")

        return call


def fake_connector(tables: Sequence[str]) -> DebeziumConnector:
    """A DebeziumConnector whose Connect client only records the calls."""
    config = {
        "database.password": "secret",
        "database.user": "cdc",
        "topic.prefix": "mariadb_scenario_0",
        "table.include.list": ",".join(tables),
    }
    client: Any = FakeClient()
    return DebeziumConnector(client, "mariadb_scenario_0", config, bootstrap="k:1", schema="db")


def test_debezium_registers_once_then_resumes_and_close_deletes_once() -> None:
    registered: list[DebeziumConnector] = []
    topics: list[Sequence[str]] = []

    def register(tables: Sequence[str]) -> Any:
        registered.append(fake_connector(tables))
        return registered[-1]

    def open_reader(wanted: Sequence[str]) -> Any:
        topics.append(wanted)
        return object()

    approach = DebeziumBinlogApproach(
        "customers", ("id",), register=register, open_reader=open_reader, kafka_bootstrap="k:1"
    )
    assert approach.delivered() == []
    approach.start()
    approach.stop()
    approach.start()
    assert [c.tables for c in registered] == [["customers"]]
    assert topics == [["mariadb_scenario_0.db.customers"]]
    client: Any = registered[0].client
    assert client.calls == ["stop", "wait_stopped", "resume", "wait_running"]
    assert "database.password" not in approach.describe()["config"]
    assert repr(registered[0]) == "DebeziumConnector(mariadb_scenario_0)"
    approach.close()
    approach.close()
    assert client.calls[-2:] == ["delete", "wait_gone"]
