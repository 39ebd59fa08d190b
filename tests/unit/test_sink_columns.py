"""Sink columns without servers: Debezium's logical types -> Arrow types per table format,
values that do not fit their column, and unchanged TOAST values (Debezium's placeholder)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import uuid
from decimal import Decimal

import pyarrow as pa
import pytest

from cdc_support.sinks.batching import MicroBatch
from cdc_support.sinks.cli import parse_config
from cdc_support.sinks.columns import column_for_arrow_type, column_from_connect
from cdc_support.sinks.decoding import RowDecoder
from cdc_support.sinks.format_types import storage_type
from cdc_support.sinks.resolve import resolve_column
from cdc_support.sinks.unavailable import (
    UNAVAILABLE,
    UNAVAILABLE_PLACEHOLDER,
    fill_unavailable,
    has_unavailable,
)

TOPIC = "cdc.public.docs"
P = UNAVAILABLE_PLACEHOLDER
NUMERIC_38_10 = {
    "type": "string",
    "optional": True,
    "parameters": {
        "__debezium.source.column.type": "NUMERIC",
        "__debezium.source.column.length": "38",
        "__debezium.source.column.scale": "10",
        "__debezium.source.column.name": "amount",
    },
}


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


# --------------------------------------------------------------------------- decimals


def test_string_mode_numeric_with_the_source_type_becomes_an_exact_decimal():
    column = column_from_connect("amount", NUMERIC_38_10)
    assert column.arrow_type == pa.decimal128(38, 10)
    value = column.convert("12345678901234567890.0123456789")
    assert value == Decimal("12345678901234567890.0123456789")
    assert str(column.convert("-0.5")) == "-0.5000000000"


@pytest.mark.parametrize("length", [None, "0", "131089"])
def test_an_unconstrained_numeric_becomes_decimal_38_10(length):
    params = {"__debezium.source.column.type": "NUMERIC"}
    if length is not None:
        params["__debezium.source.column.length"] = length
    column = column_from_connect("n", {"type": "string", "parameters": params})
    assert column.arrow_type == pa.decimal128(38, 10)
    assert column.convert("1.25") == Decimal("1.25")


def test_mariadb_decimal_and_precise_and_variable_scale_decimals():
    maria = column_from_connect(
        "p",
        {
            "type": "string",
            "parameters": {
                "__debezium.source.column.type": "DECIMAL UNSIGNED",
                "__debezium.source.column.length": "10",
                "__debezium.source.column.scale": "2",
            },
        },
    )
    assert maria.arrow_type == pa.decimal128(10, 2)
    variable = column_from_connect(
        "v",
        {
            "type": "struct",
            "name": "io.debezium.data.VariableScaleDecimal",
            "fields": [{"type": "int32", "field": "scale"}, {"type": "bytes", "field": "value"}],
        },
    )
    assert variable.arrow_type == pa.decimal128(38, 10)
    raw = b64((-123456).to_bytes(3, "big", signed=True))
    assert variable.convert({"scale": 3, "value": raw}) == Decimal("-123.456")
    # the JsonConverter names Connect's FLOAT64 and FLOAT32 "double" and "float"
    assert column_from_connect("d", {"type": "double"}).arrow_type == pa.float64()
    assert column_from_connect("f", {"type": "float"}).arrow_type == pa.float32()


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("NaN", "not a finite number"),
        ("Infinity", "not a finite number"),
        ("twelve", "expected a decimal number"),
        ("0.00000000001", "more than 10 decimal places"),
        ("123456789012345678901234567890.5", "more than 28 digits before the point"),
    ],
)
def test_a_value_that_does_not_fit_the_decimal_column_is_refused(text, reason):
    column = column_from_connect("amount", NUMERIC_38_10)
    with pytest.raises(ValueError, match=reason):
        column.convert(text)


def test_a_value_is_fitted_to_the_table_column_it_goes_to():
    """A worker started on an existing table: the source column was widened meanwhile."""
    params = {**NUMERIC_38_10["parameters"], "__debezium.source.column.scale": "12"}
    wider = {**NUMERIC_38_10, "parameters": params}
    column = resolve_column("amount", wider, pa.decimal128(38, 10), "1.5")
    assert column is not None and column.arrow_type == pa.decimal128(38, 10)
    assert column.convert("1.5") == Decimal("1.5")
    with pytest.raises(ValueError, match="more than 10 decimal places"):
        column.convert("1.000000000001")
    # a table made before the connector sent the source type holds the decimal's text
    as_text = resolve_column("amount", NUMERIC_38_10, pa.large_string(), "1.5")
    assert as_text is not None and as_text.convert("1.5") == "1.5000000000"
    schemaless = column_for_arrow_type("amount", pa.decimal128(5, 2))
    with pytest.raises(ValueError, match="more than 3 digits before the point"):
        schemaless.convert("1234.5")


# --------------------------------------------------------------------------- other logical types


def test_times_dates_json_uuid_bytes_and_arrays():
    zoned = column_from_connect("ts", {"type": "string", "name": "io.debezium.time.ZonedTimestamp"})
    assert zoned.arrow_type == pa.timestamp("us", tz="UTC")
    day = column_from_connect("d", {"type": "int32", "name": "io.debezium.time.Date"})
    assert day.convert(-1) == dt.date(1969, 12, 31)
    micro = column_from_connect("t", {"type": "int64", "name": "io.debezium.time.MicroTime"})
    assert micro.arrow_type == pa.time64("us")
    assert micro.convert(86_399_999_999) == dt.time(23, 59, 59, 999999)
    millis = column_from_connect("t", {"type": "int32", "name": "io.debezium.time.Time"})
    assert millis.convert(1_500) == dt.time(0, 0, 1, 500000)
    with pytest.raises(ValueError, match="24:00:00"):
        micro.convert(86_400_000_000)
    doc = column_from_connect("doc", {"type": "string", "name": "io.debezium.data.Json"})
    text = '{"a": [1, 2.5, null], "b": {"c": "ü"}}'
    assert (doc.arrow_type, doc.convert(text)) == (pa.string(), text)
    uid = column_from_connect("u", {"type": "string", "name": "io.debezium.data.Uuid"})
    assert uid.arrow_type == pa.uuid()
    value = uuid.uuid4()
    assert uid.convert(str(value)) == value
    with pytest.raises(ValueError, match="expected a UUID"):
        uid.convert("not-a-uuid")
    blob = column_from_connect("b", {"type": "bytes"})
    assert (blob.arrow_type, blob.convert(b64(b"\x00\xff"))) == (pa.binary(), b"\x00\xff")
    tags = column_from_connect("tags", {"type": "array", "items": {"type": "string"}})
    assert tags.arrow_type == pa.list_(pa.string())
    assert tags.convert(["a", None, "ü"]) == ["a", None, "ü"]
    days = column_from_connect(
        "ds", {"type": "array", "items": {"type": "int32", "name": "io.debezium.time.Date"}}
    )
    assert days.arrow_type == pa.list_(pa.date32())
    assert days.convert([0]) == [dt.date(1970, 1, 1)]


def test_each_format_stores_what_it_can_hold():
    assert storage_type(pa.time64("us"), "iceberg") == pa.time64("us")
    assert storage_type(pa.time64("us"), "delta") == pa.int64()
    assert storage_type(pa.uuid(), "iceberg") == pa.uuid()
    assert storage_type(pa.uuid(), "delta") == pa.string()
    assert storage_type(pa.list_(pa.uuid()), "delta") == pa.list_(pa.string())
    assert storage_type(pa.decimal128(38, 10), "delta") == pa.decimal128(38, 10)
    value = uuid.uuid4()
    micro = {"type": "int64", "name": "io.debezium.time.MicroTime"}
    uid = {"type": "string", "name": "io.debezium.data.Uuid"}
    uids = {"type": "array", "items": uid}
    for schema, raw, delta, iceberg in [
        (micro, 1_000_005, 1_000_005, dt.time(0, 0, 1, 5)),
        (uid, str(value), str(value), value),
        (uids, [str(value), None], [str(value), None], [value, None]),
    ]:
        in_delta = resolve_column("c", schema, None, raw, fmt="delta")
        in_iceberg = resolve_column("c", schema, None, raw, fmt="iceberg")
        assert in_delta.arrow_type == storage_type(in_iceberg.arrow_type, "delta")
        assert (in_delta.convert(raw), in_iceberg.convert(raw)) == (delta, iceberg)
    # a Delta table made by an earlier run: its int64 time column takes the µs as they come
    assert resolve_column("c", None, pa.int64(), 5, fmt="delta").convert(5) == 5


# --------------------------------------------------------------------------- unavailable values


def _resolve(schema, value, placeholder=P):
    column = resolve_column("c", schema, None, value, placeholder=placeholder)
    assert column is not None
    return column.convert(value)


def test_debezium_placeholders_of_every_kind_read_as_unavailable():
    assert _resolve({"type": "string"}, P) is UNAVAILABLE
    assert _resolve({"type": "string", "name": "io.debezium.data.Json"}, P) is UNAVAILABLE
    assert _resolve({"type": "bytes"}, b64(P.encode())) is UNAVAILABLE
    assert _resolve({"type": "array", "items": {"type": "string"}}, [P]) is UNAVAILABLE
    assert _resolve({"type": "array", "items": {"type": "bytes"}}, [b64(P.encode())]) is UNAVAILABLE
    ints = list(P.encode())
    assert _resolve({"type": "array", "items": {"type": "int32"}}, ints) is UNAVAILABLE
    assert _resolve({"type": "array", "items": {"type": "int64"}}, ints) is UNAVAILABLE
    name_uuid = str(uuid.UUID(bytes=hashlib.md5(P.encode()).digest(), version=3))
    uuids = {"type": "array", "items": {"type": "string", "name": "io.debezium.data.Uuid"}}
    assert _resolve(uuids, [name_uuid]) is UNAVAILABLE
    assert _resolve({"type": "map", "keys": {}, "values": {}}, {P: P}) is UNAVAILABLE
    assert _resolve(NUMERIC_38_10, P) is UNAVAILABLE
    assert _resolve(None, P) is UNAVAILABLE  # records without a schema
    # real values, and another connector's placeholder, are values
    assert _resolve({"type": "string"}, "text") == "text"
    assert _resolve({"type": "string"}, P, placeholder="__toast__") == P
    assert _resolve({"type": "string"}, "__toast__", placeholder="__toast__") is UNAVAILABLE
    assert _resolve({"type": "array", "items": {"type": "string"}}, [P, "x"]) == [P, "x"]


def test_fill_takes_unavailable_values_from_the_earlier_row():
    previous = {"id": 1, "title": "a", "body": "BIG", "blob": UNAVAILABLE}
    row = {"id": 1, "title": "b", "body": UNAVAILABLE, "blob": UNAVAILABLE}
    assert has_unavailable(row) and not has_unavailable({"id": 1})
    assert fill_unavailable(row, previous) == {
        "id": 1,
        "title": "b",
        "body": "BIG",
        "blob": UNAVAILABLE,
    }


def _envelope(op, after, offset):
    schema = {
        "type": "struct",
        "fields": [
            {
                "type": "struct",
                "field": "after",
                "fields": [
                    {"type": "int32", "field": "id"},
                    {"type": "string", "field": "title"},
                    {"type": "string", "field": "body"},
                    {"type": "bytes", "field": "blob"},
                ],
            }
        ],
    }
    payload = {"before": None, "after": after, "op": op, "source": {"ts_ms": 1}}
    value = json.dumps({"schema": schema, "payload": payload}).encode()
    return _Message(json.dumps({"id": after["id"]}).encode(), value, offset)


class _Message:
    def __init__(self, key, value, offset):
        self._key, self._value, self._offset = key, value, offset

    def key(self):
        return self._key

    def value(self):
        return self._value

    def topic(self):
        return TOPIC

    def partition(self):
        return 0

    def offset(self):
        return self._offset

    def timestamp(self):
        return (1, 1000)

    def headers(self):
        return None


def test_a_batch_fills_an_unavailable_value_from_the_earlier_event_of_its_key():
    decoder = RowDecoder(("id",))
    batch = MicroBatch(1)
    big, blob = "x" * 5000, b64(b"\x01" * 3000)
    inserted = {"id": 1, "title": "a", "body": big, "blob": blob}
    updated = {"id": 1, "title": "b", "body": P, "blob": b64(P.encode())}
    other = {"id": 2, "title": "c", "body": P, "blob": None}
    batch.add_change(TOPIC, 0, 0, decoder.decode(_envelope("c", inserted, 0)))
    batch.add_change(TOPIC, 0, 1, decoder.decode(_envelope("u", updated, 1)))
    batch.add_change(TOPIC, 0, 2, decoder.decode(_envelope("u", other, 2)))
    first, second = batch.upserts()
    assert first == {"id": 1, "title": "b", "body": big, "blob": b"\x01" * 3000}
    assert second["body"] is UNAVAILABLE  # left for the sink to take from the table
    assert batch.summary()["unavailable"] == 2


def test_the_decoder_uses_the_placeholder_it_is_given():
    decoder = RowDecoder(("id",), placeholder="__toast__")
    row = {"id": 1, "title": "__toast__", "body": P, "blob": None}
    item = decoder.decode(_envelope("u", row, 0))
    assert item.row["title"] is UNAVAILABLE and item.row["body"] == P


def test_the_placeholder_is_a_sink_option_that_round_trips():
    base = ["--bootstrap", "k:9092", "--topic", TOPIC, "--group", "g", "--format", "delta"]
    args = [*base, "--key", "id", "--table-uri", "/d"]
    assert parse_config(args).unavailable_placeholder == UNAVAILABLE_PLACEHOLDER
    config = parse_config([*args, "--unavailable-placeholder", "__toast__"])
    assert config.unavailable_placeholder == "__toast__"
    assert parse_config(config.to_args()) == config
    assert "--unavailable-placeholder" not in parse_config(args).to_args()
