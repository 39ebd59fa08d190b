import json

import confluent_kafka
import pytest

from cdc_support.events import ChangeEvent, MalformedEvent, Tombstone
from cdc_support.kafka.envelope import parse_message, parse_record

SOURCE = {
    "version": "3.0.0.Final",
    "connector": "postgresql",
    "name": "cdc",
    "ts_ms": 1_704_103_200_123,
    "ts_us": 1_704_103_200_123_456,
    "ts_ns": 1_704_103_200_123_456_000,
    "snapshot": "false",
    "db": "postgres",
    "sequence": '["24023928", "24023928"]',
    "schema": "public",
    "table": "customers",
    "txId": 747,
    "lsn": 24_023_928,
    "xmin": None,
}

ROW_BEFORE = {"id": 7, "email": "a@example.com", "country": "DE", "price": "12.50"}
ROW_AFTER = {"id": 7, "email": "a@example.com", "country": "FR", "price": "12.50"}


def envelope(op="u", before=ROW_BEFORE, after=ROW_AFTER, source=SOURCE, **extra):
    payload = {
        "before": before,
        "after": after,
        "source": source,
        "transaction": None,
        "op": op,
        "ts_ms": 1_704_103_200_500,
        "ts_us": 1_704_103_200_500_000,
        "ts_ns": 1_704_103_200_500_000_000,
    }
    payload.update(extra)
    return payload


def enc(doc) -> bytes:
    return json.dumps(doc).encode()


def with_schema(payload, schema=None):
    return {
        "schema": schema or {"type": "struct", "fields": [], "optional": False},
        "payload": payload,
    }


def test_update_with_plain_json():
    event = parse_record(
        enc({"id": 7}),
        enc(envelope()),
        topic="cdc.public.customers",
        partition=0,
        offset=12,
        timestamp_ms=1_704_103_200_900,
    )
    assert isinstance(event, ChangeEvent)
    assert event.op == "u"
    assert event.key == (7,)
    assert event.before == ROW_BEFORE
    assert event.after == ROW_AFTER
    assert event.row == ROW_AFTER
    assert event.commit_ts == pytest.approx(1_704_103_200.123456)
    assert event.observed_ts == pytest.approx(1_704_103_200.9)
    assert event.lag_seconds == pytest.approx(0.776544, abs=1e-6)
    assert event.source["lsn"] == 24_023_928
    assert event.source["txId"] == 747
    assert event.source["snapshot"] == "false"
    assert event.source["table"] == "customers"
    assert event.source["topic"] == "cdc.public.customers"
    assert event.source["partition"] == 0
    assert event.source["offset"] == 12
    assert event.source["envelope_ts_ms"] == 1_704_103_200_500


def test_source_is_a_copy():
    source = dict(SOURCE)
    event = parse_record(enc({"id": 7}), enc(envelope(source=source)))
    event.source["lsn"] = 0
    assert source["lsn"] == 24_023_928


def test_schemas_enabled_key_and_value():
    key_schema = {
        "type": "struct",
        "name": "cdc.public.order_items.Key",
        "optional": False,
        "fields": [
            {"type": "int64", "optional": False, "field": "order_id"},
            {"type": "int32", "optional": False, "field": "line_no"},
        ],
    }
    key = {"schema": key_schema, "payload": {"line_no": 2, "order_id": 5}}
    value = with_schema(envelope(op="c", before=None, after={"order_id": 5, "line_no": 2}))
    event = parse_record(enc(key), enc(value))
    assert event.op == "c"
    # schema field order wins over JSON object order
    assert event.key == (5, 2)
    assert event.after == {"order_id": 5, "line_no": 2}


def test_commit_ts_falls_back_to_ts_ms():
    source = {k: v for k, v in SOURCE.items() if k not in ("ts_us", "ts_ns")}
    event = parse_record(enc({"id": 7}), enc(envelope(source=source)))
    assert event.commit_ts == pytest.approx(1_704_103_200.123)


def test_no_timestamp_means_no_observed_ts():
    event = parse_record(enc({"id": 7}), enc(envelope()))
    assert event.observed_ts is None
    assert event.lag_seconds is None


def test_snapshot_read():
    source = dict(SOURCE, snapshot="true")
    event = parse_record(enc({"id": 7}), enc(envelope(op="r", before=None, source=source)))
    assert event.op == "r"
    assert event.source["snapshot"] == "true"


def test_delete_uses_before_and_key_fields_without_record_key():
    event = parse_record(None, enc(envelope(op="d", after=None)), key_fields=["id"])
    assert event.op == "d"
    assert event.key == (7,)
    assert event.row == ROW_BEFORE


def test_key_fields_pick_from_after():
    event = parse_record(None, enc(envelope(op="c", before=None)), key_fields=["email", "id"])
    assert event.key == ("a@example.com", 7)


def test_transaction_block_is_kept():
    tx = {"id": "747:24023928", "total_order": 1, "data_collection_order": 1}
    event = parse_record(enc({"id": 7}), enc(envelope(transaction=tx)))
    assert event.source["transaction"] == tx


def test_tombstone():
    tomb = parse_record(enc({"id": 7}), None, topic="t", partition=1, offset=3, timestamp_ms=1000)
    assert isinstance(tomb, Tombstone)
    assert tomb.key == (7,)
    assert tomb.source == {"topic": "t", "partition": 1, "offset": 3}
    assert tomb.observed_ts == 1.0


def test_tombstone_with_schema_wrapped_key():
    key = with_schema({"id": 9})
    assert parse_record(enc(key), None).key == (9,)


def _error(key, value, **kwargs) -> str:
    with pytest.raises(MalformedEvent) as info:
        parse_record(key, value, topic="cdc.public.customers", partition=0, offset=42, **kwargs)
    return str(info.value)


def test_error_names_the_position():
    message = _error(enc({"id": 1}), b"{not json")
    assert "not JSON" in message
    assert "topic 'cdc.public.customers' partition 0 offset 42" in message


def test_bad_utf8():
    assert "not valid UTF-8" in _error(enc({"id": 1}), b"\xff\xfe\xfa")


def test_bad_key():
    assert "record key is not JSON" in _error(b"\x00garbage", enc(envelope()))


@pytest.mark.parametrize("op", ["m", "t", "x", None])
def test_unsupported_op(op):
    message = _error(enc({"id": 1}), enc(envelope(op=op)))
    assert "unsupported op" in message
    assert "c, u, d, r" in message


def test_missing_op_hints_at_unwrap_smt():
    message = _error(enc({"id": 1}), enc({"id": 1, "email": "x"}))
    assert "no 'op' field" in message
    assert "ExtractNewRecordState" in message


def test_missing_source():
    payload = envelope()
    del payload["source"]
    assert "no 'source' object" in _error(enc({"id": 1}), enc(payload))


def test_missing_after_for_create():
    assert "no 'after' row image" in _error(enc({"id": 1}), enc(envelope(op="c", after=None)))


def test_missing_before_for_delete():
    message = _error(enc({"id": 1}), enc(envelope(op="d", before=None, after=None)))
    assert "no 'before' row image" in message


def test_value_not_an_object():
    assert "expected a Debezium envelope" in _error(enc({"id": 1}), b"[1, 2]")


def test_row_image_not_an_object():
    assert "'after' is a JSON list" in _error(enc({"id": 1}), enc(envelope(after=[1])))


@pytest.mark.parametrize(
    "value",
    [
        b"null",  # JsonConverter, schemas.enable=false, a null value with an (optional) schema
        enc({"schema": {"type": "struct", "optional": True, "fields": []}, "payload": None}),
        enc({"schema": None, "payload": None}),
    ],
)
def test_json_null_value_is_not_a_tombstone(value):
    message = _error(enc({"id": 7}), value)
    assert message.startswith("record value is the JSON literal null"), message
    assert "not a tombstone (a tombstone has no value at all)" in message
    assert "offset 42" in message


@pytest.mark.parametrize("key", [None, b"null"])
@pytest.mark.parametrize("op", ["r", "c", "u", "d"])
def test_keyless_event_has_no_key_and_the_row_as_identity(key, op):
    after = None if op == "d" else ROW_AFTER
    before = None if op in ("r", "c") else ROW_BEFORE
    event = parse_record(key, enc(envelope(op=op, before=before, after=after)), offset=5)
    assert isinstance(event, ChangeEvent)
    assert event.key is None
    assert event.keyless
    assert event.row == (ROW_BEFORE if op == "d" else ROW_AFTER)
    assert event.to_json_dict()["key"] is None


def test_keyless_event_with_schemas_enabled():
    value = with_schema(envelope(op="c", before=None))
    event = parse_record(None, enc(value))
    assert event.key is None
    assert event.after == ROW_AFTER


def test_key_fields_still_give_a_keyless_record_a_key():
    event = parse_record(None, enc(envelope(op="c", before=None)), key_fields=["id"])
    assert event.key == (7,)
    assert not event.keyless


def test_key_field_missing_from_row():
    message = _error(None, enc(envelope()), key_fields=["nope"])
    assert "['nope']" in message
    assert "columns:" in message


def test_keyless_tombstone_has_key_none():
    tomb = parse_record(None, None, topic="t", partition=0, offset=9, timestamp_ms=2000)
    assert isinstance(tomb, Tombstone)
    assert tomb.key is None
    assert tomb.source == {"topic": "t", "partition": 0, "offset": 9}
    assert tomb.to_json_dict()["key"] is None


def test_parse_message_with_a_real_confluent_message():
    msg = confluent_kafka.Message(
        topic="cdc.public.customers",
        partition=2,
        offset=77,
        key=enc({"id": 7}),
        value=enc(envelope()),
        timestamp=(confluent_kafka.TIMESTAMP_CREATE_TIME, 1_704_103_201_000),
    )
    event = parse_message(msg)
    assert isinstance(event, ChangeEvent)
    assert event.key == (7,)
    assert event.source["partition"] == 2
    assert event.source["offset"] == 77
    assert event.observed_ts == 1_704_103_201.0


def test_parse_message_without_timestamp_and_tombstone():
    msg = confluent_kafka.Message(topic="t", partition=0, offset=1, key=enc({"id": 7}), value=None)
    tomb = parse_message(msg)
    assert isinstance(tomb, Tombstone)
    assert tomb.observed_ts is None


def test_parse_message_with_kafka_error():
    msg = confluent_kafka.Message(
        topic="t", partition=0, offset=1, error=confluent_kafka.KafkaError(1, "broken")
    )
    with pytest.raises(MalformedEvent, match="Kafka error"):
        parse_message(msg)
