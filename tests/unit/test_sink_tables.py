"""The Delta and Iceberg sinks on real local tables (no Kafka): commits, recorded positions,
new columns, maintenance, one writer per Iceberg table."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pyarrow as pa
import pytest

from cdc_support.deltalake.location import DeltaLocation
from cdc_support.sinks.base import MaintenancePolicy, SinkConflict, duplicate_keys
from cdc_support.sinks.columns import Column, column_from_connect
from cdc_support.sinks.delta_sink import DeltaSink
from cdc_support.sinks.envelopes import CUSTOMER_FIELDS
from cdc_support.sinks.iceberg_sink import IcebergSink
from cdc_support.sinks.resolve import resolve_column
from cdc_support.sinks.unavailable import UNAVAILABLE, UNAVAILABLE_PLACEHOLDER

T = "cdc.public.customers"
COLUMNS = [column_from_connect(f["field"], f) for f in CUSTOMER_FIELDS]
TIER = Column("tier", pa.string(), lambda v: v, "test")


def row(key: int, name: str = "Ada", **extra):
    return {
        "id": key,
        "email": f"c{key}@example.com",
        "full_name": name,
        "country": "DE",
        "created_at": dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
        **extra,
    }


def delta_sink(tmp_path, **kwargs) -> DeltaSink:
    return DeltaSink(DeltaLocation.local(tmp_path / "t"), ("id",), app_id="test", **kwargs)


def iceberg_sink(tmp_path, **kwargs) -> IcebergSink:
    return IcebergSink(tmp_path / "wh", "sink.customers", ("id",), **kwargs)


@pytest.fixture(params=["delta", "iceberg"])
def make_sink(request, tmp_path):
    made = []

    def make(**kwargs):
        sink = (delta_sink if request.param == "delta" else iceberg_sink)(tmp_path, **kwargs)
        made.append(sink)
        return sink

    yield make
    for sink in made:
        sink.close()


def test_upserts_and_deletes_keep_one_row_per_key_and_record_the_offsets(make_sink):
    sink = make_sink()
    assert sink.table_columns() is None and sink.stored_positions([(T, 0)]) == {}
    sink.ensure_columns(COLUMNS)
    sink.write([row(1), row(2), row(3)], [], {(T, 0): [0, 3]}, 1)
    result = sink.write([row(1, "Bo"), row(4)], [(2,)], {(T, 0): [3, 9]}, 2)
    assert result.seconds > 0 and result.visible_at > 0
    rows = sink.read_rows()
    assert sorted(rows) == [(1,), (3,), (4,)] and rows[(1,)]["full_name"] == "Bo"
    assert duplicate_keys(sink.read_all(), ("id",)) == []
    assert sink.stored_positions([(T, 0), (T, 1)]) == {(T, 0): 9}
    assert "batch" in str(sink.history(5))


def test_a_new_sink_on_the_same_table_reads_the_recorded_position(make_sink):
    first = make_sink()
    first.ensure_columns(COLUMNS)
    first.write([row(1)], [], {(T, 0): [0, 5], (T, 1): [0, 2]}, 1)
    second = make_sink()
    assert second.stored_positions([(T, 0), (T, 1)]) == {(T, 0): 5, (T, 1): 2}
    assert list(second.table_columns()) == ["id", "email", "full_name", "country", "created_at"]


def test_an_added_column_reads_null_in_older_rows(make_sink):
    sink = make_sink()
    sink.ensure_columns(COLUMNS)
    sink.write([row(1), row(2)], [], {(T, 0): [0, 2]}, 1)
    assert sink.ensure_columns([TIER]) == {"added": ["tier string"]}
    assert sink.ensure_columns([TIER]) == {}
    sink.write([row(3, tier="gold")], [], {(T, 0): [2, 3]}, 2)
    rows = sink.read_rows()
    assert rows[(1,)]["tier"] is None and rows[(3,)]["tier"] == "gold"


def test_a_table_without_key_values_cannot_be_created(make_sink):
    with pytest.raises(ValueError, match=r"key columns \['id'\] have no values"):
        make_sink().ensure_columns(COLUMNS[1:])


def test_delta_optimizes_every_n_commits(tmp_path):
    sink = delta_sink(tmp_path, policy=MaintenancePolicy(optimize_every=2))
    sink.ensure_columns(COLUMNS)
    sink.write([row(1)], [], {(T, 0): [0, 1]}, 1)
    assert sink.maintain() == []
    sink.write([row(2)], [], {(T, 0): [1, 2]}, 2)
    (done,) = sink.maintain()
    assert done["kind"] == "optimize"


def test_iceberg_expires_snapshots_and_compacts_small_files(tmp_path):
    policy = MaintenancePolicy(expire_every=3, keep_snapshots=2, compact_files=4)
    sink = iceberg_sink(tmp_path, policy=policy)
    sink.ensure_columns(COLUMNS)
    kinds = []
    for n in range(1, 7):
        sink.write([row(100 + n)], [], {(T, 0): [n - 1, n]}, n)
        kinds += [d["kind"] for d in sink.maintain()]
    assert "compact" in kinds and "expire_snapshots" in kinds
    table = sink.catalog.load_table("sink.customers")
    assert len(table.snapshots()) <= 4
    assert int(table.current_snapshot().summary["total-data-files"]) <= 4
    assert sink.stored_positions([(T, 0)]) == {(T, 0): 6}
    assert len(sink.read_rows()) == 6


def test_iceberg_allows_one_writer_per_table(tmp_path):
    first = iceberg_sink(tmp_path, writer_id="worker-a")
    first.ensure_columns(COLUMNS)
    first.write([row(1)], [], {(T, 0): [0, 1]}, 1)
    second = iceberg_sink(tmp_path, writer_id="worker-b")
    second.claim()
    with pytest.raises(SinkConflict, match="claimed by writer 'worker-b'"):
        first.write([row(2)], [], {(T, 0): [1, 2]}, 2)
    second.write([row(2)], [], {(T, 0): [1, 2]}, 2)
    assert sorted(second.read_rows()) == [(1,), (2,)]
    first.close()
    second.close()


# --------------------------------------------------------------------------- typed columns, TOAST

TYPED_FIELDS = [
    {"type": "int64", "field": "id"},
    {
        "type": "string",
        "field": "amount",
        "parameters": {
            "__debezium.source.column.type": "NUMERIC",
            "__debezium.source.column.length": "38",
            "__debezium.source.column.scale": "10",
        },
    },
    {"type": "string", "name": "io.debezium.time.ZonedTimestamp", "field": "ts"},
    {"type": "int32", "name": "io.debezium.time.Date", "field": "day"},
    {"type": "int64", "name": "io.debezium.time.MicroTime", "field": "at"},
    {"type": "string", "name": "io.debezium.data.Json", "field": "doc"},
    {"type": "array", "items": {"type": "string"}, "field": "tags"},
    {"type": "string", "name": "io.debezium.data.Uuid", "field": "uid"},
    {"type": "bytes", "field": "payload"},
    {"type": "string", "field": "body"},
]
TYPED_JSON = {
    "id": 1,
    "amount": "12345678901234567890.0123456789",
    "ts": "2024-02-29T18:29:59.999999Z",
    "day": -1,
    "at": 86_399_999_999,
    "doc": '{"a": [1, 2.5, null]}',
    "tags": ["a", None, "ü"],
    "uid": "6f1c2d0e-8a43-4c3b-9f0e-2b1d7c9a5e11",
    "payload": "AP8=",
    "body": "large text",
}


def typed(fmt: str, values: dict) -> tuple[list[Column], dict]:
    columns = [
        resolve_column(f["field"], f, None, values[f["field"]], fmt=fmt) for f in TYPED_FIELDS
    ]
    return columns, {c.name: c.convert(values[c.name]) for c in columns}


def test_typed_columns_round_trip_with_the_types_each_format_holds(make_sink):
    sink = make_sink()
    fmt = sink.format
    columns, values = typed(fmt, TYPED_JSON)
    sink.ensure_columns(columns)
    sink.write([values], [], {(T, 0): [0, 1]}, 1)
    types = {k: str(v) for k, v in sink.table_columns().items()}
    (back,) = sink.read_all()
    assert back["amount"] == Decimal("12345678901234567890.0123456789")
    assert back["ts"] == dt.datetime(2024, 2, 29, 18, 29, 59, 999999, tzinfo=dt.UTC)
    assert back["day"] == dt.date(1969, 12, 31)
    assert (back["doc"], back["tags"], back["payload"]) == (
        TYPED_JSON["doc"],
        ["a", None, "ü"],
        b"\x00\xff",
    )
    assert types["amount"] == "decimal128(38, 10)" and types["ts"] == "timestamp[us, tz=UTC]"
    assert types["day"] == "date32[day]" and "list" in types["tags"]
    uid = uuid.UUID(TYPED_JSON["uid"])
    native = sink.native_types()
    names = " ".join(native[c] for c in ("amount", "ts", "day", "at", "tags", "uid", "payload"))
    if fmt == "delta":
        assert names == "decimal(38,10) timestamp date long array<string> string binary"
    else:
        assert names == "decimal(38, 10) timestamptz date time list<string> uuid binary"
    if fmt == "delta":
        assert (types["at"], types["uid"]) == ("int64", "string")
        assert (back["at"], back["uid"]) == (86_399_999_999, str(uid))
    else:
        assert (types["at"], types["uid"]) == ("time64[us]", "extension<arrow.uuid>")
        assert (back["at"], back["uid"]) == (dt.time(23, 59, 59, 999999), uid)


def test_an_unavailable_value_keeps_the_tables_value(make_sink):
    sink = make_sink()
    fmt = sink.format
    columns, first = typed(fmt, TYPED_JSON)
    sink.ensure_columns(columns)
    sink.write([first, typed(fmt, {**TYPED_JSON, "id": 2})[1]], [], {(T, 0): [0, 2]}, 1)
    unchanged = {**TYPED_JSON, "body": UNAVAILABLE_PLACEHOLDER, "tags": [UNAVAILABLE_PLACEHOLDER]}
    _, update = typed(fmt, {**unchanged, "amount": "1.5"})
    _, new = typed(fmt, {**unchanged, "id": 3})
    assert update["body"] is UNAVAILABLE and update["tags"] is UNAVAILABLE
    result = sink.write([update, new], [(2,)], {(T, 0): [2, 5]}, 2)
    rows = sink.read_rows()
    assert sorted(rows) == [(1,), (3,)]
    assert rows[(1,)]["body"] == "large text" and rows[(1,)]["tags"] == ["a", None, "ü"]
    assert rows[(1,)]["amount"] == Decimal("1.5")
    assert rows[(3,)]["body"] is None and rows[(3,)]["tags"] is None  # never seen: null
    assert result.detail["unavailable_rows"] == 2
