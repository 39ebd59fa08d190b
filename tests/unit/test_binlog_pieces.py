"""The MySQL/MariaDB binlog CDC pieces that need no server: positions, DSNs, connector
configs, lag against client commit times, and loss/duplicate accounting."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from cdc_support.checkpoint import CheckpointError
from cdc_support.checks.delivery import committed_ops, delivery_report
from cdc_support.checks.lag import lag_against_commits
from cdc_support.events import ChangeEvent
from cdc_support.kafka.connector_config import (
    HEARTBEAT_INTERVAL_MS,
    MARIADB_CONNECTOR,
    MYSQL_CONNECTOR,
    heartbeat_topic,
    mysql_connector_config,
)
from cdc_support.mysql.binlog_reader import BinlogPosition, BinlogReader, PositionStore
from cdc_support.mysql.source import MySqlAddress, parse_dsn
from cdc_support.workload import Operation

EXPECTED_DSN_FORM = "mysql://user[:password]@host[:port][/database]"


def _event(op, key, *, file="binlog.000001", pos=100, row=0, observed=None, commit=None):
    before = None if op == "c" else {"id": key[0], "v": "old"}
    after = None if op == "d" else {"id": key[0], "v": "new"}
    source = {"connector": "binlog-reader", "file": file, "pos": pos, "row": row}
    return ChangeEvent(op, key, before, after, source, commit, observed)


# ------------------------------------------------------------------ PositionStore


def test_position_store_is_empty_until_saved_then_round_trips(tmp_path: Path) -> None:
    store = PositionStore(tmp_path / "deep" / "er" / "position.json", "binlog of h:1 for d.t")
    assert store.load() is None
    store.save(BinlogPosition("binlog.000002", 4711))
    assert store.load() == BinlogPosition("binlog.000002", 4711)
    store.save(BinlogPosition("binlog.000003", 4))
    assert store.load() == BinlogPosition("binlog.000003", 4)
    assert PositionStore(store.path).load() == BinlogPosition("binlog.000003", 4)
    assert [p.name for p in store.path.parent.iterdir()] == ["position.json"]


def test_position_store_replaces_the_file_instead_of_rewriting_it(tmp_path: Path) -> None:
    store = PositionStore(tmp_path / "position.json", "binlog of h:1 for d.t")
    store.save(BinlogPosition("binlog.000001", 10))
    old = tmp_path / "old-inode.json"
    os.link(store.path, old)
    store.save(BinlogPosition("binlog.000001", 20))
    # a rename gives the name a new file; the old one (still linked) is untouched
    assert json.loads(old.read_text())["position"] == {"file": "binlog.000001", "pos": 10}
    assert store.load() == BinlogPosition("binlog.000001", 20)


def test_position_store_keeps_the_old_position_when_saving_is_interrupted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = PositionStore(tmp_path / "position.json", "binlog of h:1 for d.t")
    store.save(BinlogPosition("binlog.000001", 10))

    def crash(src, dst):
        raise OSError("power cut before the rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="power cut"):
        store.save(BinlogPosition("binlog.000009", 999))
    monkeypatch.undo()
    assert store.load() == BinlogPosition("binlog.000001", 10)


@pytest.mark.parametrize(
    "content",
    [
        "not json at all",
        "",
        '{"file": "binlog.000001"}',
        '{"pos": 4}',
        '{"file": "binlog.000001", "pos": "four"}',
        "[1, 2]",
        "null",
        '{"source": "s", "position": {"file": "binlog.000001"}}',
        '{"source": "s", "position": {"file": "binlog.000001", "pos": "four"}}',
    ],
    ids=[
        "garbage",
        "empty",
        "no-pos",
        "no-file",
        "pos-not-int",
        "list",
        "null",
        "checkpoint-without-pos",
        "checkpoint-pos-not-int",
    ],
)
def test_unreadable_position_file_names_the_file_and_the_fix(tmp_path: Path, content) -> None:
    path = tmp_path / "position.json"
    path.write_text(content)
    with pytest.raises(ValueError) as info:
        PositionStore(path).load()
    message = str(info.value)
    assert str(path) in message
    assert "delete it" in message


def test_a_reader_refuses_the_position_file_of_another_server_or_table(tmp_path: Path) -> None:
    path = tmp_path / "position.json"
    address = MySqlAddress("127.0.0.1", 3306, "cdc", "pw")
    first = BinlogReader(
        address, schema="shop", tables=["orders"], store=PositionStore(path), server_id=4242
    )
    first.store.save(BinlogPosition("binlog.000001", 10))
    same = BinlogReader(
        address, schema="shop", tables=["orders"], store=PositionStore(path), server_id=4243
    )
    assert same.store.load() == BinlogPosition("binlog.000001", 10)
    for schema, tables, port in (("shop", ["customers"], 3306), ("shop", ["orders"], 3307)):
        other = BinlogReader(
            MySqlAddress("127.0.0.1", port, "cdc", "pw"),
            schema=schema,
            tables=tables,
            store=PositionStore(path),
            server_id=4244,
        )
        with pytest.raises(CheckpointError, match=r"belongs to 'binlog of 127\.0\.0\.1:3306 for"):
            other.store.load()


# ------------------------------------------------------------------ BinlogPosition


def test_binlog_positions_order_by_file_then_offset_and_print_as_file_colon_pos() -> None:
    positions = [
        BinlogPosition("binlog.000002", 4),
        BinlogPosition("binlog.000001", 900),
        BinlogPosition("binlog.000010", 4),
        BinlogPosition("binlog.000001", 120),
    ]
    assert sorted(positions) == [
        BinlogPosition("binlog.000001", 120),
        BinlogPosition("binlog.000001", 900),
        BinlogPosition("binlog.000002", 4),
        BinlogPosition("binlog.000010", 4),
    ]
    assert BinlogPosition("binlog.000001", 900) < BinlogPosition("binlog.000002", 4)
    assert str(BinlogPosition("binlog.000003", 1234)) == "binlog.000003:1234"
    assert BinlogPosition("binlog.000001", 4) == BinlogPosition("binlog.000001", 4)
    assert len({BinlogPosition("b", 1), BinlogPosition("b", 1)}) == 1


# ------------------------------------------------------------------ parse_dsn


@pytest.mark.parametrize(
    ("dsn", "expected"),
    [
        (
            "mysql://cdc:cdc-secret@127.0.0.1:3307/shop",
            MySqlAddress("127.0.0.1", 3307, "cdc", "cdc-secret", "shop"),
        ),
        ("mysql://root@127.0.0.1:40001/", MySqlAddress("127.0.0.1", 40001, "root", "", None)),
        ("mariadb://db.example.com", MySqlAddress("db.example.com", 3306, "root", "", None)),
        ("mysql://u%40x:p%3Aw%2Fd@h:1/d", MySqlAddress("h", 1, "u@x", "p:w/d", "d")),
    ],
    ids=["full", "no-database", "defaults", "percent-encoded"],
)
def test_parse_dsn_reads_each_part(dsn: str, expected: MySqlAddress) -> None:
    assert parse_dsn(dsn) == expected


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://u@h:5432/db",
        "127.0.0.1:3306",
        "mysql:///db",
        "",
        "mysql://u@h:notaport/db",
        "mysql://u@h:99999/db",
        "mysql://u@[::1/db",
    ],
    ids=["other-scheme", "no-scheme", "no-host", "empty", "bad-port", "port-range", "bad-ipv6"],
)
def test_parse_dsn_rejects_bad_input_showing_the_expected_form(dsn: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_dsn(dsn)
    assert EXPECTED_DSN_FORM in str(info.value)
    assert repr(dsn) in str(info.value)


def test_address_connect_kwargs_and_repr_without_password() -> None:
    address = parse_dsn("mysql://cdc:s3cret@127.0.0.1:3307/shop")
    assert address.connect_kwargs() == {
        "host": "127.0.0.1",
        "port": 3307,
        "user": "cdc",
        "password": "s3cret",
        "database": "shop",
    }
    assert "database" not in address.with_database(None).connect_kwargs()
    assert address.with_database("other").database == "other"
    assert "s3cret" not in repr(address)
    assert repr(address) == "cdc@127.0.0.1:3307/shop"


# ------------------------------------------------------------------ connector config


def _mysql_config(**overrides):
    arguments = {
        "flavor": "mariadb",
        "host": "127.0.0.1",
        "port": 3307,
        "user": "cdc",
        "password": "pw",
        "database": "shop",
        "tables": ["customers", "orders"],
        "topic_prefix": "cdc_orders_1234",
        "server_id": 4242,
        "kafka_bootstrap": "127.0.0.1:9092",
    }
    return mysql_connector_config(**{**arguments, **overrides})


@pytest.mark.parametrize(
    ("flavor", "connector_class"),
    [("mariadb", MARIADB_CONNECTOR), ("mysql", MYSQL_CONNECTOR)],
)
def test_flavor_picks_the_connector_class(flavor: str, connector_class: str) -> None:
    assert _mysql_config(flavor=flavor)["connector.class"] == connector_class


def test_connector_classes_are_debeziums() -> None:
    assert MARIADB_CONNECTOR == "io.debezium.connector.mariadb.MariaDbConnector"
    assert MYSQL_CONNECTOR == "io.debezium.connector.mysql.MySqlConnector"


def test_unknown_flavor_lists_the_choices() -> None:
    with pytest.raises(ValueError) as info:
        _mysql_config(flavor="percona")
    assert "'percona'" in str(info.value)
    assert "['mariadb', 'mysql']" in str(info.value)


def test_mysql_config_names_history_topic_heartbeat_and_include_lists() -> None:
    config = _mysql_config()
    assert config["schema.history.internal.kafka.topic"] == "cdc_orders_1234.schema-history"
    assert config["schema.history.internal.kafka.bootstrap.servers"] == "127.0.0.1:9092"
    assert config["heartbeat.interval.ms"] == str(HEARTBEAT_INTERVAL_MS) == "1000"
    assert config["database.include.list"] == "shop"
    assert config["table.include.list"] == "shop.customers,shop.orders"
    assert config["topic.prefix"] == "cdc_orders_1234"
    assert config["database.server.id"] == "4242"
    assert config["database.port"] == "3307"
    assert config["database.user"] == "cdc"
    assert config["snapshot.mode"] == "initial"
    assert config["decimal.handling.mode"] == "string"
    assert config["tombstones.on.delete"] == "true"
    assert all(isinstance(v, str) for v in config.values()), config


def test_mysql_config_extra_overrides_win_and_become_strings() -> None:
    config = _mysql_config(
        snapshot_mode="no_data",
        tombstones_on_delete=False,
        extra={"heartbeat.interval.ms": 250, "max.batch.size": 10, "snapshot.mode": "never"},
    )
    assert config["heartbeat.interval.ms"] == "250"
    assert config["max.batch.size"] == "10"
    assert config["snapshot.mode"] == "never"
    assert config["tombstones.on.delete"] == "false"
    assert _mysql_config(snapshot_mode="no_data")["snapshot.mode"] == "no_data"


def test_heartbeat_topic_uses_debeziums_default_prefix() -> None:
    assert heartbeat_topic("cdc_x_1") == "__debezium-heartbeat.cdc_x_1"


# ------------------------------------------------------------------ lag_against_commits


def test_lag_against_commits_samples_observed_minus_committed() -> None:
    events = [
        _event("c", (1,), observed=10.5),
        _event("u", (1,), observed=11.25),
        _event("d", (2,), observed=13.0),
    ]
    commits = [("c", (1,), 10.0), ("u", (1,), 11.0), ("d", (2,), 12.0)]
    assert lag_against_commits(events, commits) == pytest.approx([0.5, 0.25, 1.0])


def test_lag_against_commits_skips_commits_without_a_time_and_extra_events() -> None:
    events = [
        _event("c", (1,), observed=10.5),
        _event("c", (2,), observed=20.0),
        _event("c", (3,), observed=31.0),
        _event("c", (4,), observed=99.0),
    ]
    commits = [("c", (1,), 10.0), ("c", (2,), None), ("c", (3,), 30.0)]
    assert lag_against_commits(events, commits) == pytest.approx([0.5, 1.0])


def test_lag_against_commits_names_the_first_mismatch() -> None:
    events = [_event("c", (1,), observed=1.0), _event("c", (3,), observed=2.0)]
    commits = [("c", (1,), 0.5), ("c", (2,), 1.5), ("c", (3,), 2.5)]
    with pytest.raises(ValueError) as info:
        lag_against_commits(events, commits)
    message = str(info.value)
    assert "event #1" in message and "commit #1" in message
    assert "(3,)" in message and "(2,)" in message
    with pytest.raises(ValueError, match="event #0 is 'u'"):
        lag_against_commits([_event("u", (1,), observed=1.0)], [("c", (1,), 0.0)])


# ------------------------------------------------------------------ delivery_report


def _ops(*pairs):
    return [Operation(op=op, table="customers", key=key, row=None) for op, key in pairs]


WORKLOAD = _ops(("insert", (1,)), ("insert", (2,)), ("update", (1,)), ("delete", (2,)))


def _delivered(*, file="binlog.000001"):
    return [
        _event("c", (1,), file=file, pos=100),
        _event("c", (2,), file=file, pos=200),
        _event("u", (1,), file=file, pos=300),
        _event("d", (2,), file=file, pos=400),
    ]


def test_committed_ops_maps_kinds_to_op_codes_in_commit_order() -> None:
    assert committed_ops(WORKLOAD) == [("c", (1,)), ("c", (2,)), ("u", (1,)), ("d", (2,))]


def test_delivery_report_exactly_once() -> None:
    report = delivery_report(committed_ops(WORKLOAD), _delivered())
    assert report.exactly_once, report.summary()
    assert (report.expected, report.delivered) == (4, 4)
    assert report.as_dict() == {
        "committed": 4,
        "delivered": 4,
        "lost": 0,
        "duplicated": 0,
        "keys_out_of_order": 0,
        "repeated_source_positions": 0,
        "exactly_once": True,
    }


def test_delivery_report_counts_lost_changes_per_key() -> None:
    delivered = [e for e in _delivered() if e.op != "u"]
    report = delivery_report(committed_ops(WORKLOAD), delivered)
    assert not report.exactly_once
    assert report.lost == {(1,): ["u"]}
    assert report.duplicated == {} and report.reordered == {}
    assert report.as_dict()["lost"] == 1
    assert "1 lost" in report.summary() and "lost: (1,): ['u']" in report.summary()


def test_delivery_report_counts_a_redelivered_event_as_duplicate_and_repeated_position() -> None:
    delivered = _delivered()
    report = delivery_report(committed_ops(WORKLOAD), [*delivered, delivered[2]])
    assert not report.exactly_once
    assert report.duplicated == {(1,): ["u"]}
    assert report.repeated_positions == 1
    assert report.lost == {}
    assert report.delivered == 5
    assert "1 duplicated" in report.summary()


def test_delivery_report_sees_a_key_delivered_out_of_order() -> None:
    delivered = _delivered()
    swapped = [delivered[0], delivered[2], delivered[1], delivered[3]]  # other keys interleave
    assert delivery_report(committed_ops(WORKLOAD), swapped).exactly_once
    key_one_backwards = [delivered[2], delivered[1], delivered[0], delivered[3]]
    report = delivery_report(committed_ops(WORKLOAD), key_one_backwards)
    assert not report.exactly_once
    assert report.reordered == {(1,): (["c", "u"], ["u", "c"])}
    assert report.lost == {} and report.duplicated == {}
    assert report.as_dict()["keys_out_of_order"] == 1


def test_delivery_report_flags_repeated_positions_even_when_ops_match() -> None:
    # the same key written twice, but both events claim one binlog position: a replay
    committed = [("c", (1,)), ("u", (1,))]
    same_place = [_event("c", (1,), pos=100), _event("u", (1,), pos=100)]
    report = delivery_report(committed, same_place)
    assert report.repeated_positions == 1
    assert not report.exactly_once
    assert "1 repeated source positions" in report.summary()
    # rows of one multi-row event share file and pos but not the row index
    rows = [_event("c", (1,), pos=100, row=0), _event("c", (2,), pos=100, row=1)]
    assert delivery_report([("c", (1,)), ("c", (2,))], rows).exactly_once
    # the same offset in another binlog file is another place
    other_file = [_event("c", (1,), pos=100), _event("c", (2,), file="binlog.000002", pos=100)]
    assert delivery_report([("c", (1,)), ("c", (2,))], other_file).exactly_once


def test_delivery_report_reports_changes_nobody_committed() -> None:
    report = delivery_report([("c", (1,))], [_event("c", (1,)), _event("c", (7,), pos=700)])
    assert report.duplicated == {(7,): ["c"]}
    assert not report.exactly_once


# ------------------------------------------------------------------ BinlogReader


def test_binlog_reader_needs_a_table(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one table"):
        BinlogReader(
            MySqlAddress("127.0.0.1", 1, "cdc"),
            schema="shop",
            tables=[],
            store=PositionStore(tmp_path / "p.json"),
            server_id=1234,
        )
