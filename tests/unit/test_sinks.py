"""Sink pieces without servers: columns, decoding and batching, offsets, DLQ headers, the
commit-log audit, metrics text and the ``cdc-spec sink`` options."""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import time

import pyarrow as pa
import pytest
from prometheus_client import generate_latest

from cdc_support.cli import main as cdc_spec_main
from cdc_support.events import MalformedEvent, Tombstone
from cdc_support.sinks.applying import COMMIT_ATTEMPTS
from cdc_support.sinks.base import (
    MaintenancePolicy,
    SinkConfigError,
    SinkConflict,
    SinkError,
    duplicate_keys,
)
from cdc_support.sinks.batching import MicroBatch, latest_per_key
from cdc_support.sinks.cli import parse_config
from cdc_support.sinks.columns import (
    column_for_arrow_type,
    column_from_connect,
    column_from_value,
    field_schemas,
)
from cdc_support.sinks.commit_log import applied_events, audit, lag_samples, read_commit_log
from cdc_support.sinks.config import SinkTarget, WorkerConfig
from cdc_support.sinks.decoding import RowDecoder
from cdc_support.sinks.delta_sink import app_id_for, transactions_for
from cdc_support.sinks.dlq import dlq_headers, dlq_topic_for
from cdc_support.sinks.envelopes import CUSTOMER_FIELDS, customer_changes, envelope
from cdc_support.sinks.iceberg_sink import key_filter
from cdc_support.sinks.metrics import SinkMetrics, parse_metrics
from cdc_support.sinks.positions import positions_from_json, positions_to_json
from cdc_support.sinks.screening import is_data_error, unfit_rows
from cdc_support.sinks.trend import latency_trend
from cdc_support.sinks.worker import SinkWorker

TOPIC = "cdc.public.customers"


class FakeMessage:
    """The part of confluent_kafka.Message the sink reads."""

    def __init__(self, key, value, offset=0, partition=0, topic=TOPIC, headers=None, ts=1000):
        self._key = key if key is None or isinstance(key, bytes) else json.dumps(key).encode()
        self._value = value
        self._offset = offset
        self._partition = partition
        self._topic = topic
        self._headers = headers
        self._ts = ts

    def key(self):
        return self._key

    def value(self):
        return self._value

    def topic(self):
        return self._topic

    def partition(self):
        return self._partition

    def offset(self):
        return self._offset

    def timestamp(self):
        return (1, self._ts) if self._ts is not None else (0, -1)

    def headers(self):
        return self._headers

    def error(self):
        return None


ROW = {
    "id": 7,
    "email": "a@example.com",
    "full_name": "Ada",
    "country": "DE",
    "created_at": "2024-01-01T10:00:00.123456Z",
}
SCHEMA = {
    "type": "struct",
    "fields": [
        {"type": "struct", "fields": list(CUSTOMER_FIELDS), "optional": True, "field": "before"},
        {"type": "struct", "fields": list(CUSTOMER_FIELDS), "optional": True, "field": "after"},
    ],
}


def change(op, row, offset, *, schema=True, before=None, commit_ts=1_700_000_000.0):
    value = envelope(
        op,
        before if op != "d" else row,
        None if op == "d" else row,
        commit_ts=commit_ts,
        schema=SCHEMA if schema else None,
    )
    return FakeMessage({"id": row["id"]}, value, offset=offset)


# --------------------------------------------------------------------------- columns


def test_connect_schema_types_become_typed_columns():
    ts = column_from_connect("t", {"type": "string", "name": "io.debezium.time.ZonedTimestamp"})
    assert ts.arrow_type == pa.timestamp("us", tz="UTC")
    assert ts.convert("2024-01-01T12:00:00.5+02:00") == dt.datetime(
        2024, 1, 1, 10, 0, 0, 500000, tzinfo=dt.UTC
    )
    day = column_from_connect("d", {"type": "int32", "name": "io.debezium.time.Date"})
    assert (day.arrow_type, day.convert(19723)) == (pa.date32(), dt.date(2024, 1, 1))
    micros = column_from_connect("m", {"type": "int64", "name": "io.debezium.time.MicroTimestamp"})
    assert micros.convert(1_704_067_200_000_001) == dt.datetime(2024, 1, 1, 0, 0, 0, 1)
    small = column_from_connect("s", {"type": "int16"})
    assert small.arrow_type == pa.int32()
    nested = column_from_connect("n", {"type": "struct", "fields": []})
    assert nested.convert({"b": 1, "a": 2}) == '{"a":2,"b":1}'


def test_connect_decimal_bytes_decode_to_decimal():
    schema = {
        "type": "bytes",
        "name": "org.apache.kafka.connect.data.Decimal",
        "parameters": {"scale": "2", "connect.decimal.precision": "10"},
    }
    column = column_from_connect("price", schema)
    assert column.arrow_type == pa.decimal128(10, 2)
    raw = base64.b64encode((-1250).to_bytes(2, "big", signed=True)).decode()
    assert column.convert(raw) == decimal.Decimal("-12.50")


def test_values_that_do_not_fit_their_column_raise_value_error():
    with pytest.raises(ValueError, match="expected an integer"):
        column_from_connect("id", {"type": "int64"}).convert("7")
    zoned = column_from_connect("t", {"type": "string", "name": "io.debezium.time.ZonedTimestamp"})
    with pytest.raises(ValueError, match="ISO 8601"):
        zoned.convert("yesterday")
    with pytest.raises(ValueError, match="unsupported Kafka Connect schema type"):
        column_from_connect("x", {"type": "float128"})


def test_columns_without_schema_are_inferred_or_follow_the_table():
    assert column_from_value("a", None) is None
    assert column_from_value("a", True).arrow_type == pa.bool_()
    assert column_from_value("a", 3).arrow_type == pa.int64()
    assert column_from_value("a", "x").arrow_type == pa.string()
    existing = column_for_arrow_type("t", pa.timestamp("us", tz="UTC"))
    assert existing.convert("2024-01-01T00:00:00Z") == dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    money = column_for_arrow_type("p", pa.decimal128(10, 2))
    assert money.convert("12.50") == decimal.Decimal("12.50")


def test_field_schemas_reads_the_row_struct_of_an_envelope():
    fields = field_schemas(SCHEMA)
    assert list(fields) == ["id", "email", "full_name", "country", "created_at"]


# --------------------------------------------------------------------------- decoding, batches


def test_decoder_types_rows_from_the_record_schema_and_lists_new_columns():
    decoder = RowDecoder(("id",))
    item = decoder.decode(change("c", ROW, 0))
    assert item.key == (7,)
    assert item.row["created_at"] == dt.datetime(2024, 1, 1, 10, 0, 0, 123456, tzinfo=dt.UTC)
    assert list(decoder.pending) == ["id", "email", "full_name", "country", "created_at"]
    decoder.table_changed({c: decoder.columns[c].arrow_type for c in decoder.pending})
    assert decoder.pending == {}


def test_decoder_without_schema_infers_and_waits_for_non_null_values():
    decoder = RowDecoder(("id",))
    item = decoder.decode(change("c", {"id": 1, "tier": None}, 0, schema=False))
    assert item.row == {"id": 1} and "tier" not in decoder.columns
    item = decoder.decode(change("u", {"id": 1, "tier": "gold"}, 1, schema=False))
    assert item.row == {"id": 1, "tier": "gold"} and "tier" in decoder.pending


def test_deletes_carry_the_key_only_and_tombstones_pass_through():
    decoder = RowDecoder(("id",))
    deleted = decoder.decode(change("d", ROW, 3))
    assert deleted.is_delete and deleted.key == (7,)
    assert isinstance(decoder.decode(FakeMessage({"id": 7}, None, offset=4)), Tombstone)


def test_unparseable_records_raise_malformed_event_naming_where():
    decoder = RowDecoder(("id",))
    with pytest.raises(MalformedEvent, match="not JSON"):
        decoder.decode(FakeMessage({"id": 1}, b"not json {", offset=9))
    with pytest.raises(ValueError, match="column 'id'"):
        decoder.decode(change("c", {**ROW, "id": "seven"}, 10))


def test_a_batch_keeps_the_latest_event_per_key_and_every_offset():
    decoder = RowDecoder(("id",))
    batch = MicroBatch(1)
    batch.add_change(TOPIC, 0, 10, decoder.decode(change("c", ROW, 10)))
    batch.add_change(TOPIC, 0, 11, decoder.decode(change("u", {**ROW, "full_name": "Bo"}, 11)))
    batch.add_change(TOPIC, 0, 12, decoder.decode(change("c", {**ROW, "id": 8}, 12)))
    batch.add_change(TOPIC, 0, 13, decoder.decode(change("d", {**ROW, "id": 8}, 13)))
    batch.add_tombstone(TOPIC, 0, 14)
    batch.add_dead_letter(TOPIC, 0, 15)
    assert [r["full_name"] for r in batch.upserts()] == ["Bo"]
    assert batch.deletes() == [(8,)]
    assert batch.ranges == {(TOPIC, 0): [10, 16]}
    assert batch.next_positions() == {(TOPIC, 0): 16}
    assert batch.summary() == {
        "records": 6,
        "events": 4,
        "keys": 2,
        "upserts": 1,
        "deletes": 1,
        "tombstones": 1,
        "keyless_tombstones": 0,
        "dead_letters": 1,
        "skipped_replayed": 0,
        "unavailable": 0,
    }


def test_a_batch_is_as_old_as_its_oldest_record_in_kafka():
    batch = MicroBatch(1)
    batch.add_tombstone(TOPIC, 0, 1)
    assert batch.age() < 0.5
    batch.written_at(time.time() - 3.0)  # written while the batch before was committing
    assert 3.0 <= batch.age() < 3.5
    batch.written_at(time.time())  # a newer record does not make the batch younger
    assert batch.age() >= 3.0
    batch.written_at(time.time() + 60)  # a clock ahead of ours counts as just written
    assert batch.age() >= 3.0


def test_latest_per_key_keeps_the_last_item_of_each_key():
    decoder = RowDecoder(("id",))
    items = [decoder.decode(change("c", {**ROW, "id": k}, i)) for i, k in enumerate([1, 2, 1])]
    latest = latest_per_key(items)
    assert list(latest) == [(1,), (2,)] and latest[(1,)] is items[2]


def test_positions_round_trip_through_json():
    positions = {("a", 0): 5, ("a", 1): 7, ("b", 0): 0}
    text = positions_to_json(positions)
    assert json.loads(text) == {"a": {"0": 5, "1": 7}, "b": {"0": 0}}
    assert positions_from_json(text) == positions
    assert positions_from_json(None) == {}


def test_delta_app_transaction_per_partition_has_the_next_offset_as_version():
    txns = transactions_for("sink", {("t", 1): [40, 45], ("t", 0): [10, 20]})
    assert [(t.app_id, t.version) for t in txns] == [("sink:t:0", 20), ("sink:t:1", 45)]
    assert app_id_for("sink", "t", 3) == "sink:t:3"


def test_iceberg_key_filter_for_single_and_composite_keys():
    assert "In" in repr(key_filter(("id",), [(1,), (2,)]))
    composite = repr(key_filter(("order_id", "line_no"), [(1, 1), (1, 2)]))
    assert "Or" in composite and "And" in composite


def test_duplicate_keys_finds_keys_held_twice():
    rows = [{"id": 1}, {"id": 2}, {"id": 1}]
    assert duplicate_keys(rows, ("id",)) == [(1,)]


# --------------------------------------------------------------------------- dead letters


def test_dead_letter_headers_keep_the_original_ones_and_say_why_and_where_from():
    msg = FakeMessage(b'{"id": 1}', b"junk", offset=42, partition=3, headers=[("trace", b"x")])
    headers = dict(dlq_headers(msg, "record value is not JSON", "MalformedEvent", "g1"))
    assert headers["trace"] == b"x"
    assert headers["cdc.dlq.reason"] == b"record value is not JSON"
    assert headers["cdc.dlq.error"] == b"MalformedEvent"
    assert (headers["cdc.dlq.topic"], headers["cdc.dlq.partition"]) == (TOPIC.encode(), b"3")
    assert headers["cdc.dlq.offset"] == b"42"
    assert headers["cdc.dlq.timestamp"] == b"1000"
    assert headers["cdc.dlq.worker"] == b"g1"
    assert dlq_topic_for(TOPIC) == TOPIC + ".dlq"


# --------------------------------------------------------------------------- commit log


def _commit(batch, first, nxt, events, topic="t"):
    return {
        "kind": "commit",
        "batch": batch,
        "topic": topic,
        "ranges": {topic: {"0": [first, nxt]}},
        "summary": {"skipped_replayed": 0},
        "visible_at": 100.0 + batch,
        "events": [[0, off, "u", [off], 99.0 + batch] for off in events],
    }


def _start(stored):
    return {"kind": "start", "stored": {"t": {"0": stored}} if stored is not None else {}}


def test_audit_accepts_a_clean_restart_and_counts_an_unlogged_commit():
    entries = [
        _start(None),
        _commit(1, 0, 5, range(5)),
        _commit(2, 5, 10, range(5, 10)),
        # killed after committing 10..14 to the table without logging it
        _start(15),
        {
            "kind": "commit",
            "batch": 3,
            "topic": "t",
            "ranges": {"t": {"0": [10, 20]}},
            "summary": {"skipped_replayed": 5},
            "events": [[0, off, "u", [off], 1.0] for off in range(15, 20)],
        },
    ]
    result = audit(entries)
    assert result.exactly_once, result.as_dict()
    assert result.runs == 2 and result.events_applied == 15 and result.skipped_records == 5
    assert result.unlogged == ["t/0 offsets 10..14"]


def test_audit_finds_duplicates_replays_below_the_position_and_gaps():
    twice = audit([_start(None), _commit(1, 0, 5, range(5)), _commit(2, 3, 8, range(3, 8))])
    assert twice.duplicated_offsets == [("t", 0, 3), ("t", 0, 4)]
    below = audit([_start(None), _commit(1, 0, 5, range(5)), _start(5), _commit(2, 0, 5, [4])])
    assert below.below_stored and not below.exactly_once
    gap = audit([_start(None), _commit(1, 0, 5, range(5)), _commit(2, 7, 9, range(7, 9))])
    assert gap.gaps == ["t/0 offsets 5..6"]


def test_lag_and_applied_events_come_from_commit_lines():
    entries = [_start(None), _commit(1, 0, 2, [0, 1]), _commit(2, 2, 3, [2])]
    assert lag_samples(entries) == [1.0, 1.0, 1.0]
    events = applied_events(entries)
    assert [e.source["offset"] for e in events] == [0, 1, 2]
    assert events[0].observed_ts == 101.0 and events[0].key == (0,)


def test_latency_trend_compares_first_and_last_commits():
    trend = latency_trend([0.1] * 5 + [0.2] * 5)
    assert trend["median_first"] == 0.1 and trend["median_last"] == 0.2
    assert trend["slope_ms_per_commit"] > 0
    with pytest.raises(ValueError, match="committed nothing"):
        latency_trend([])


# --------------------------------------------------------------------------- metrics


def test_each_worker_has_its_own_registry_and_the_text_parses():
    first, second = SinkMetrics(), SinkMetrics()
    first.events.inc(3)
    first.dead_letters.labels(reason="malformed").inc()
    first.lag.observe(0.4)
    samples = parse_metrics(generate_latest(first.registry).decode())
    assert samples["cdc_sink_events_consumed_total"] == 3.0
    assert samples['cdc_sink_dead_letters_total{reason="malformed"}'] == 1.0
    assert samples["cdc_sink_end_to_end_lag_seconds_count"] == 1.0
    assert (
        parse_metrics(generate_latest(second.registry).decode())["cdc_sink_events_consumed_total"]
        == 0.0
    )


# --------------------------------------------------------------------------- options


BASE = ["--bootstrap", "k:9092", "--topic", TOPIC, "--group", "g"]


def test_options_round_trip_through_the_command_line():
    config = WorkerConfig(
        bootstrap="k:9092",
        topic=TOPIC,
        group="g",
        target=SinkTarget("iceberg", ("order_id", "line_no"), warehouse="/w", table="shop.items"),
        batch_size=10,
        batch_ms=20,
        metrics_port=9464,
        commit_log="/tmp/log.jsonl",
        policy=MaintenancePolicy(expire_every=3, keep_snapshots=2, compact_files=5),
        consumer_config={"fetch.wait.max.ms": "50"},
        offset_commit_ms=0,
        instance_id="me",
    )
    assert parse_config(config.to_args()) == config
    delta = WorkerConfig("k:9092", TOPIC, "g", SinkTarget("delta", ("id",), table_uri="/d"))
    assert parse_config(delta.to_args()) == delta


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "parquet", "--key", "id"], "choose from 'delta', 'iceberg'"),
        (["--format", "delta", "--key", "id"], "--table-uri PATH_OR_URI"),
        (["--format", "iceberg", "--key", "id", "--warehouse", "/w"], "--table NAMESPACE.TABLE"),
        (
            ["--format", "iceberg", "--key", "id", "--warehouse", "/w", "--table", "plain"],
            "NAMESPACE.TABLE",
        ),
        (["--format", "delta", "--key", "id,", "--table-uri", "/d"], "column names separated"),
        (["--format", "delta", "--key", "id", "--table-uri", "/d", "--batch-size", "0"], ">= 1"),
        (
            ["--format", "delta", "--key", "id", "--table-uri", "/d", "--metrics-port", "70000"],
            "0..65535",
        ),
        (
            ["--format", "delta", "--key", "id", "--table-uri", "/d", "--storage-option", "x"],
            "KEY=VALUE",
        ),
        (
            ["--format", "delta", "--key", "id", "--table-uri", "/d", "--expire-every", "-1"],
            "0 turns it off",
        ),
    ],
)
def test_bad_options_exit_2_naming_what_is_allowed(args, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_config(BASE + args)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_cdc_spec_names_its_commands(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cdc_spec_main(["unknown"])
    assert exit_info.value.code == 2
    assert "choose from 'sink'" in capsys.readouterr().err


def test_maintenance_policy_refuses_negative_values():
    with pytest.raises(ValueError, match="expire_every must be >= 0"):
        MaintenancePolicy(expire_every=-1)


def test_envelopes_rebuild_to_the_expected_rows():
    changes = customer_changes(300, seed=3, initial_rows=20)
    decoder = RowDecoder(("id",))
    state = {}
    for offset, (key, value) in enumerate(changes.records):
        item = decoder.decode(FakeMessage(key, value, offset=offset))
        if isinstance(item, Tombstone):
            continue
        if item.is_delete:
            state.pop(item.key, None)
        else:
            state[item.key] = item.row
    assert set(state) == set(changes.rows)
    assert changes.change_events == 320


def _flaky_worker(tmp_path, failures: list[Exception]):
    """A worker on a real Delta table whose first writes raise ``failures`` in turn."""
    config = WorkerConfig(
        "k:9092", TOPIC, "g", SinkTarget("delta", ("id",), table_uri=str(tmp_path / "t"))
    )
    worker = SinkWorker(config)
    real_write = worker.sink.write
    calls: list[int] = []

    def write(*args, **kwargs):
        calls.append(1)
        if failures:
            raise failures.pop(0)
        return real_write(*args, **kwargs)

    worker.sink.write = write  # type: ignore[method-assign]
    return worker, calls


def _error_count(worker, stage: str) -> float:
    return worker.metrics.errors.labels(stage=stage)._value.get()


def test_a_failed_commit_is_retried_and_counted(tmp_path) -> None:
    worker, calls = _flaky_worker(tmp_path, [OSError("store hiccup")])
    batch = MicroBatch(1)
    with pytest.raises(SinkError) as caught:
        # no table yet: every attempt fails for real after the hiccup
        worker.applier._write(batch, {})
    assert len(calls) == COMMIT_ATTEMPTS
    assert f"after {COMMIT_ATTEMPTS} attempts" in str(caught.value)
    assert _error_count(worker, "commit") == COMMIT_ATTEMPTS


def test_a_lost_table_claim_is_not_retried(tmp_path) -> None:
    worker, calls = _flaky_worker(tmp_path, [SinkConflict("another writer owns the table")])
    with pytest.raises(SinkConflict):
        worker.applier._write(MicroBatch(1), {})
    assert len(calls) == 1
    assert _error_count(worker, "commit_conflict") == 1


# --------------------------------------------------------------------------- poison records


class FakeDeadLetters:
    """Stands in for the dead-letter producer (Kafka is not what these tests exercise)."""

    topic = TOPIC + ".dlq"

    def __init__(self):
        self.sent = []

    def send(self, msg, reason, error):
        self.sent.append((msg.offset(), reason, error))

    def flush(self, timeout=30.0):
        pass

    def close(self):
        pass


def keyed(record_key, value, offset):
    return FakeMessage(record_key, value, offset=offset)


def test_a_row_without_its_key_column_is_malformed_even_when_the_record_key_has_it():
    decoder = RowDecoder(("id",))
    row = {k: v for k, v in ROW.items() if k != "id"}
    value = envelope("c", None, row, commit_ts=1.0)
    with pytest.raises(MalformedEvent, match=r"no key column\(s\) \['id'\]"):
        decoder.decode(keyed({"id": 7}, value, 3))
    assert "email" not in decoder.columns  # a rejected record defines no column


def test_a_null_key_value_in_the_row_is_malformed():
    decoder = RowDecoder(("id",))
    with pytest.raises(MalformedEvent, match="key column 'id' is null"):
        decoder.decode(change("c", {**ROW, "id": None}, 4))


def test_a_json_literal_null_value_is_not_a_tombstone_whatever_the_parser_says(monkeypatch):
    decoder = RowDecoder(("id",))
    with pytest.raises(MalformedEvent, match="JSON literal null"):
        decoder.decode(keyed({"id": 7}, b"null", 5))
    # a parser that still reads it as a tombstone: the sink knows better
    import cdc_support.sinks.decoding as decoding

    monkeypatch.setattr(
        decoding, "parse_message", lambda msg, key_fields=None: Tombstone((7,), {}, None)
    )
    with pytest.raises(MalformedEvent, match="JSON literal null"):
        decoder.decode(keyed({"id": 7}, b"null", 6))


def test_a_tombstone_without_a_key_is_a_keyless_tombstone_whatever_the_parser_says(monkeypatch):
    decoder = RowDecoder(("id",))
    tombstone = decoder.decode(keyed(None, None, 7))
    assert isinstance(tombstone, Tombstone) and tombstone.key is None
    import cdc_support.sinks.decoding as decoding

    def old_parser(msg, key_fields=None):
        raise MalformedEvent("tombstone (null value) without a record key")

    monkeypatch.setattr(decoding, "parse_message", old_parser)
    tombstone = decoder.decode(keyed(None, None, 8))
    assert isinstance(tombstone, Tombstone) and tombstone.key is None


def test_keyless_records_take_their_key_from_the_row_or_refuse_naming_key():
    decoder = RowDecoder(("view_id",))
    row = {"view_id": 3, "url": "/a"}
    item = decoder.decode(keyed(None, envelope("c", None, row, commit_ts=1.0), 0))
    assert item.key == (3,) and item.row == row
    with pytest.raises(SinkConfigError, match="--key") as caught:
        RowDecoder(("id",)).decode(keyed(None, envelope("c", None, row, commit_ts=1.0), 1))
    assert "url, view_id" in str(caught.value) and "\n" not in str(caught.value)


def test_values_that_do_not_fit_the_table_are_found_row_by_row():
    types = {"id": pa.int64(), "full_name": pa.string()}
    rows = [{"id": 1, "full_name": "a"}, {"id": 2**70, "full_name": "b"}, {"id": 3}]
    rows.append({"id": 4, "full_name": "bad \ud800"})
    problems = unfit_rows(rows, types)
    assert sorted(problems) == [1, 3]
    assert "'id'" in problems[1] and "'full_name'" in problems[3]
    assert unfit_rows(rows[:1], types) == {}


def test_data_errors_are_told_apart_from_transient_ones():
    assert is_data_error(pa.ArrowInvalid("Column 'country' is declared non-nullable"))
    assert is_data_error(KeyError("id")) and is_data_error(OverflowError("too big"))
    assert not is_data_error(OSError("connection reset"))
    assert not is_data_error(SinkConflict("another writer"))
    assert not is_data_error(RuntimeError("write before the table exists"))


def test_a_batch_splits_in_arrival_order_with_exact_ranges_and_rejects_rebuild_the_latest():
    decoder = RowDecoder(("id",))
    batch = MicroBatch(4)
    batch.add_change(TOPIC, 0, 10, decoder.decode(change("c", ROW, 10)))
    batch.add_tombstone(TOPIC, 0, 11)
    batch.add_change(TOPIC, 0, 12, decoder.decode(change("u", {**ROW, "full_name": "Bo"}, 12)))
    batch.add_change(TOPIC, 0, 13, decoder.decode(change("c", {**ROW, "id": 8}, 13)))
    first, second = batch.split()
    assert (first.ranges, second.ranges) == ({(TOPIC, 0): [10, 12]}, {(TOPIC, 0): [12, 14]})
    assert first.number == second.number == 4 and first.tombstones == 1
    assert [r["full_name"] for r in first.upserts()] == ["Ada"]
    batch.reject(batch.change_items()[1])  # the update is refused: the insert is the latest
    assert [r["full_name"] for r in batch.upserts()] == ["Ada", "Ada"]
    assert batch.dead_letters == 1 and batch.ranges == {(TOPIC, 0): [10, 14]}
    assert [e.offset for e in batch.events] == [10, 13]


def _worker(tmp_path, key=("id",)):
    config = WorkerConfig(
        "k:9092",
        TOPIC,
        "g",
        SinkTarget("delta", key, table_uri=str(tmp_path / "t")),
        commit_log=str(tmp_path / "log.jsonl"),
    )
    worker = SinkWorker(config)
    worker.dead_letters.queue = FakeDeadLetters()
    return worker


def _take_all(worker, messages):
    batch = MicroBatch(worker.batches + 1)
    for msg in messages:
        worker._take(msg, batch)
    return batch


def test_a_value_that_does_not_fit_is_dead_lettered_and_the_rest_of_the_batch_applied(tmp_path):
    worker = _worker(tmp_path)
    messages = [change("c", {**ROW, "id": i}, i) for i in range(5)]
    messages.insert(2, keyed({"id": 99}, envelope("c", None, {**ROW, "id": 2**70}, commit_ts=1), 9))
    worker._flush(_take_all(worker, messages))
    assert sorted(worker.sink.read_rows()) == [(i,) for i in range(5)]
    ((offset, reason, _),) = worker.dead_letters.queue.sent
    assert offset == 9 and "'id'" in reason and "\n" not in reason
    entries = read_commit_log(tmp_path / "log.jsonl")
    assert audit(entries).exactly_once
    assert [e["kind"] for e in entries] == ["commit"]


def test_a_record_the_table_refuses_is_isolated_by_halves_and_the_rest_applied(tmp_path):
    worker = _worker(tmp_path)
    worker._flush(_take_all(worker, [change("c", {**ROW, "id": 100}, 0)]))
    worker.sink._table.alter.add_constraint({"no_xx": "country <> 'XX'"})  # the table's own rule
    messages = [change("c", {**ROW, "id": i, "country": "DE"}, i) for i in range(1, 9)]
    messages[5] = change("u", {**ROW, "id": 3, "country": "XX"}, 6)  # refused by the table
    worker._flush(_take_all(worker, messages))
    rows = worker.sink.read_rows()
    assert sorted(rows) == [(i,) for i in (1, 2, 3, 4, 5, 7, 8, 100)]
    assert rows[(3,)]["country"] == "DE"  # its earlier event, in an earlier part, stands
    ((offset, reason, _),) = worker.dead_letters.queue.sent
    assert offset == 6 and "failed validation check" in reason and "\n" not in reason
    entries = read_commit_log(tmp_path / "log.jsonl")
    result = audit(entries)
    assert result.exactly_once and result.events_applied == 8, result.as_dict()
    assert worker.sink.stored_positions([(TOPIC, 0)]) == {(TOPIC, 0): 9}
    assert _error_count(worker, "commit_refused") >= 1


def test_keyless_tombstones_are_counted_and_skipped(tmp_path):
    worker = _worker(tmp_path)
    batch = _take_all(worker, [keyed(None, None, 0), keyed({"id": 1}, None, 1)])
    assert batch.tombstones == 2 and batch.keyless_tombstones == 1
    assert not worker.dead_letters.queue.sent
    assert worker.metrics.keyless_tombstones._value.get() == 1


def test_a_table_without_the_key_columns_is_refused_at_start(tmp_path):
    worker = _worker(tmp_path)
    worker._flush(_take_all(worker, [change("c", ROW, 0)]))
    worker.close()
    with pytest.raises(SinkConfigError, match=r"--key.*'customer_no'"):
        _worker(tmp_path, key=("customer_no",))


def test_a_delta_path_or_iceberg_warehouse_that_is_a_file_is_refused_naming_the_option(tmp_path):
    path = tmp_path / "file"
    path.write_text("x")
    with pytest.raises(SinkConfigError, match="--table-uri") as caught:
        SinkTarget("delta", ("id",), table_uri=str(path)).open()
    assert "is a file" in str(caught.value)
    with pytest.raises(SinkConfigError, match="--warehouse") as caught:
        SinkTarget("iceberg", ("id",), warehouse=str(path), table="a.b").open()
    assert "is a file" in str(caught.value)


def test_require_topic_round_trips_through_the_command_line():
    config = WorkerConfig(
        "k:9092", TOPIC, "g", SinkTarget("delta", ("id",), table_uri="/d"), require_topic=True
    )
    assert "--require-topic" in config.to_args()
    assert parse_config(config.to_args()) == config
