"""A source column's type changes mid-stream: the rules the sink decides by, without servers
(the record schema cache, which changes a table widens, and the values a kept column takes)."""

from __future__ import annotations

import decimal
import json
from typing import Any

import pyarrow as pa
import pytest

from cdc_support.sinks.columns import column_from_connect
from cdc_support.sinks.decoding import RowDecoder
from cdc_support.sinks.envelopes import envelope
from cdc_support.sinks.record_schemas import RecordSchemas
from cdc_support.sinks.type_changes import DELTA_REFUSAL, grown, kept_column, widening_refusal

TOPIC = "cdc.public.accounts"


class Message:
    """The part of confluent_kafka.Message the decoder reads."""

    def __init__(self, key: Any, value: bytes, offset: int) -> None:
        self._key, self._value, self._offset = json.dumps(key).encode(), value, offset

    def key(self) -> bytes:
        return self._key

    def value(self) -> bytes:
        return self._value

    def topic(self) -> str:
        return TOPIC

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset

    def timestamp(self) -> tuple[int, int]:
        return (1, 1000)

    def headers(self) -> None:
        return None


def _price(precision: int) -> dict[str, Any]:
    return {
        "type": "string",
        "optional": True,
        "field": "price",
        "parameters": {
            "__debezium.source.column.type": "NUMERIC",
            "__debezium.source.column.length": str(precision),
            "__debezium.source.column.scale": "2",
        },
    }


def _schema(qty: str = "int32", price: int = 8, legacy: bool = True) -> dict[str, Any]:
    fields = [
        {"type": "int32", "optional": False, "field": "id"},
        {"type": qty, "optional": True, "field": "qty"},
        _price(price),
    ]
    if legacy:
        fields.append({"type": "string", "optional": True, "field": "legacy"})
    row = {"type": "struct", "fields": fields, "optional": True}
    return {
        "type": "struct",
        "fields": [{**row, "field": "before"}, {**row, "field": "after"}],
    }


def _record(row: dict[str, Any], offset: int, **schema: Any) -> Message:
    value = envelope("c", None, row, commit_ts=1_700_000_000.0, schema=_schema(**schema))
    return Message({"id": row["id"]}, value, offset)


def _table(decoder: RowDecoder) -> dict[str, pa.DataType]:
    return {name: column.arrow_type for name, column in decoder.columns.items()}


def test_record_schemas_parse_each_schema_once_and_tell_changes_by_identity() -> None:
    schemas = RecordSchemas()
    first = schemas.of(_record({"id": 1, "qty": 1}, 0).value())
    again = schemas.of(_record({"id": 2, "qty": 2}, 1).value())
    wider = schemas.of(_record({"id": 3, "qty": 3}, 2, qty="int64").value())
    assert first is again and first is not wider
    assert (first["qty"]["type"], wider["qty"]["type"]) == ("int32", "int64")
    assert schemas.of(b'{"id": 1}') == {} and schemas.of(None) == {}


def test_what_counts_as_a_type_that_grew() -> None:
    assert grown(pa.int32(), pa.int64()) and grown(pa.float32(), pa.float64())
    assert grown(pa.decimal128(8, 2), pa.decimal128(12, 2))
    assert grown(pa.decimal128(8, 2), pa.decimal128(8, 4))  # more decimal places
    assert not grown(pa.int64(), pa.int32()) and not grown(pa.string(), pa.large_string())
    assert not grown(pa.decimal128(12, 2), pa.decimal128(8, 2))


def test_iceberg_widens_in_place_and_delta_keeps_the_type_with_the_fix_named() -> None:
    assert widening_refusal(pa.int32(), pa.int64(), "iceberg") is None
    assert widening_refusal(pa.decimal128(8, 2), pa.decimal128(12, 2), "iceberg") is None
    assert "scale" in str(widening_refusal(pa.decimal128(8, 2), pa.decimal128(8, 4), "iceberg"))
    assert widening_refusal(pa.int32(), pa.int64(), "delta") == DELTA_REFUSAL


def test_a_kept_column_takes_what_fits_and_refuses_the_rest_saying_why() -> None:
    qty = kept_column(column_from_connect("qty", {"type": "int64"}), pa.int32(), "delta", "why")
    assert qty.arrow_type == pa.int32() and qty.convert(7) == 7 and qty.convert(None) is None
    with pytest.raises(ValueError, match=r"3000000000 does not fit int32"):
        qty.convert(3_000_000_000)
    assert "the delta table keeps int32: why" in qty.origin
    price = kept_column(column_from_connect("price", _price(12)), pa.decimal128(8, 2), "delta", "")
    assert price.convert("12.50") == decimal.Decimal("12.50")
    with pytest.raises(ValueError, match="digits before the point"):
        price.convert("1234567890.12")


def _decoder_after_first_batch(fmt: str) -> RowDecoder:
    decoder = RowDecoder(("id",), fmt=fmt)
    decoder.decode(_record({"id": 1, "qty": 1, "price": "1.50", "legacy": "a"}, 0))
    decoder.table_changed(_table(decoder))
    assert decoder.pending == {}
    return decoder


def test_iceberg_decoder_asks_for_the_wider_types_and_converts_as_the_source_sends() -> None:
    decoder = _decoder_after_first_batch("iceberg")
    row = {"id": 2, "qty": 3_000_000_000, "price": "1234567890.12"}
    item = decoder.decode(_record(row, 1, qty="int64", price=12, legacy=False))
    assert item.row == {"id": 2, "qty": 3_000_000_000, "price": decimal.Decimal("1234567890.12")}
    assert {n: c.arrow_type for n, c in decoder.pending.items()} == {
        "qty": pa.int64(),
        "price": pa.decimal128(12, 2),
    }
    decoder.table_changed(
        {**decoder.table_columns, "qty": pa.int64(), "price": pa.decimal128(12, 2)}
    )
    assert decoder.pending == {} and decoder.kept == {}


def test_delta_decoder_keeps_the_types_and_refuses_values_beyond_them() -> None:
    decoder = _decoder_after_first_batch("delta")
    fits = decoder.decode(_record({"id": 2, "qty": 5, "price": "99.25"}, 1, qty="int64", price=12))
    assert fits.row == {"id": 2, "qty": 5, "price": decimal.Decimal("99.25")}
    assert decoder.pending == {} and set(decoder.kept) == {"qty", "price"}
    with pytest.raises(ValueError, match=r"column 'qty' .*delta-rs cannot widen.* at .*@2"):
        decoder.decode(_record({"id": 3, "qty": 3_000_000_000}, 2, qty="int64", price=12))


def test_a_widening_the_table_did_not_make_is_kept_not_asked_again() -> None:
    decoder = _decoder_after_first_batch("iceberg")
    decoder.decode(_record({"id": 2, "qty": 5}, 1, qty="int64"))
    decoder.table_changed(dict(decoder.table_columns))  # the table still has int32
    assert decoder.pending == {} and decoder.kept == {"qty": "the table did not widen it"}
    with pytest.raises(ValueError, match="does not fit int32"):
        decoder.decode(_record({"id": 3, "qty": 2**40}, 2, qty="int64"))


def test_a_dropped_column_is_left_out_of_the_rows_written_since() -> None:
    decoder = _decoder_after_first_batch("delta")
    item = decoder.decode(_record({"id": 2, "qty": 4}, 1, legacy=False))
    assert item.row == {"id": 2, "qty": 4} and decoder.pending == {}


# --------------------------------------------------------------------------- real local tables

T = (TOPIC, 0)


def test_an_iceberg_table_widens_in_place_and_keeps_the_older_values(tmp_path) -> None:
    from cdc_support.sinks.iceberg_sink import IcebergSink

    narrow = [column_from_connect(f["field"], f) for f in _schema()["fields"][1]["fields"]]
    wide = [column_from_connect(f["field"], f) for f in _schema("int64", 12)["fields"][1]["fields"]]
    sink = IcebergSink(tmp_path / "wh", "sink.accounts", ("id",))
    try:
        sink.ensure_columns(narrow)
        sink.write([{"id": 1, "qty": 7, "price": decimal.Decimal("1.50")}], [], {T: [0, 1]}, 1)
        assert sink.ensure_columns(wide) == {
            "widened": ["qty int -> long", "price decimal(8, 2) -> decimal(12, 2)"]
        }
        big = {"id": 2, "qty": 3_000_000_000, "price": decimal.Decimal("1234567890.12")}
        sink.write([big], [], {T: [1, 2]}, 2)
        sink.write([{"id": 3, "qty": 8}, {"id": 4, "qty": 9}], [], {T: [2, 4]}, 3)
        assert sink.read_rows()[(1,)]["price"] == decimal.Decimal("1.50")
        sink.write([{"id": 1, "qty": 2**40}], [(4,)], {T: [4, 6]}, 4)  # rewrites the int32 file
        rows = sink.read_rows()
        assert sorted(rows) == [(1,), (2,), (3,)] and rows[(1,)]["qty"] == 2**40
        assert rows[(2,)]["qty"] == 3_000_000_000 and rows[(2,)]["price"] == big["price"]
        assert sink.native_types()["qty"] == "long"
    finally:
        sink.close()


def test_a_row_without_a_dropped_column_reads_null_in_it(tmp_path) -> None:
    from cdc_support.deltalake.location import DeltaLocation
    from cdc_support.sinks.delta_sink import DeltaSink

    columns = [column_from_connect(f["field"], f) for f in _schema()["fields"][1]["fields"]]
    sink = DeltaSink(DeltaLocation.local(tmp_path / "t"), ("id",), app_id="test")
    sink.ensure_columns(columns)
    sink.write([{"id": 1, "qty": 1, "legacy": "a"}, {"id": 2, "legacy": "b"}], [], {T: [0, 2]}, 1)
    sink.write([{"id": 2, "qty": 5}, {"id": 3, "qty": 6}], [], {T: [2, 4]}, 2)
    legacy = {k: r["legacy"] for k, r in sink.read_rows().items()}
    assert legacy == {(1,): "a", (2,): None, (3,): None}
