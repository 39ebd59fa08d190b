"""TopicReader over a fake consumer: keyless records and malformed records never stop it."""

from __future__ import annotations

import json
from types import SimpleNamespace

import confluent_kafka
import pytest

from cdc_support.events import ChangeEvent, MalformedEvent, Tombstone
from cdc_support.kafka.topics import TopicReader

SOURCE = {"connector": "postgresql", "lsn": 100, "ts_us": 1_704_103_200_000_000}


class FakeConsumer:
    """Hands out pre-made batches, one per consume() call; its topics have one partition
    each once ``created``; records what was assigned."""

    def __init__(self, *batches: list[confluent_kafka.Message], created: bool = True) -> None:
        self.batches = list(batches)
        self.created = created
        self.assigned: list[tuple[str, int, int]] = []

    def list_topics(self, topic: str, timeout: float) -> SimpleNamespace:
        if not self.created:
            return SimpleNamespace(topics={})
        described = SimpleNamespace(error=None, partitions={0: object()})
        return SimpleNamespace(topics={topic: described})

    def incremental_assign(self, partitions: list[confluent_kafka.TopicPartition]) -> None:
        self.assigned += [(p.topic, p.partition, p.offset) for p in partitions]

    def consume(self, num_messages: int, timeout: float) -> list[confluent_kafka.Message]:
        if not self.assigned:
            return []
        return self.batches.pop(0) if self.batches else []

    def close(self) -> None:
        pass


def _msg(offset: int, key: dict | None, value: dict | bytes | None) -> confluent_kafka.Message:
    raw = value if isinstance(value, bytes) or value is None else json.dumps(value).encode()
    return confluent_kafka.Message(
        topic="cdc.public.notes",
        partition=0,
        offset=offset,
        key=None if key is None else json.dumps(key).encode(),
        value=raw,
        timestamp=(confluent_kafka.TIMESTAMP_CREATE_TIME, 1_704_103_201_000),
    )


def _envelope(op: str, before: dict | None, after: dict | None) -> dict:
    return {"op": op, "before": before, "after": after, "source": SOURCE, "ts_ms": 1}


def _reader(*batches: list[confluent_kafka.Message], **kwargs) -> TopicReader:
    return TopicReader(
        "127.0.0.1:9", ["cdc.public.notes"], consumer=FakeConsumer(*batches), **kwargs
    )


def test_a_keyless_table_streams_events_and_null_key_tombstones():
    row = {"note": "hello", "n": 1}
    changed = {"note": "hello again", "n": 1}
    batch = [
        _msg(0, None, _envelope("c", None, row)),
        _msg(1, None, _envelope("u", row, changed)),
        _msg(2, None, _envelope("d", changed, None)),
        _msg(3, None, None),  # Debezium's tombstone for a keyless table: no key, no value
        _msg(4, None, _envelope("c", None, row)),
    ]
    reader = _reader(batch)
    assert reader.poll_once() == 5
    assert [e.op for e in reader.seen.events] == ["c", "u", "d", "c"]
    assert all(e.key is None for e in reader.seen.events)
    assert [t.key for t in reader.seen.tombstones] == [None]
    assert isinstance(reader.seen.records[3], Tombstone)
    assert reader.seen.malformed == []


def test_a_malformed_record_is_reported_after_its_batch_and_loses_nothing():
    good = _envelope("c", None, {"id": 1})
    batch = [_msg(0, {"id": 1}, good), _msg(1, {"id": 2}, b"null"), _msg(2, {"id": 3}, good)]
    reader = _reader(batch, [_msg(3, {"id": 4}, good)])
    with pytest.raises(MalformedEvent, match=r"offset 1.*the other records were kept"):
        reader.poll_once()
    assert [r.source["offset"] for r in reader.seen.records] == [0, 2]
    assert len(reader.seen.malformed) == 1
    assert "JSON literal null" in str(reader.seen.malformed[0])
    assert reader.poll_once() == 1  # and reading goes on
    assert [r.source["offset"] for r in reader.seen.events] == [0, 2, 3]


def test_skip_malformed_collects_without_raising():
    batch = [_msg(0, {"id": 1}, b"{broken"), _msg(1, {"id": 2}, _envelope("c", None, {"id": 2}))]
    reader = _reader(batch, skip_malformed=True)
    assert reader.poll_once() == 1
    assert isinstance(reader.seen.records[0], ChangeEvent)
    assert "not JSON" in str(reader.seen.malformed[0])


def test_the_reader_assigns_itself_each_partition_from_the_start_once_the_topic_exists(
    monkeypatch,
):
    monkeypatch.setattr("cdc_support.kafka.topics.METADATA_EVERY", 0.0)
    consumer = FakeConsumer([_msg(0, {"id": 1}, _envelope("c", None, {"id": 1}))], created=False)
    reader = TopicReader("127.0.0.1:9", ["cdc.public.notes"], consumer=consumer)
    assert reader.poll_once() == 0 and consumer.assigned == []
    consumer.created = True
    assert reader.poll_once() == 1
    assert consumer.assigned == [("cdc.public.notes", 0, confluent_kafka.OFFSET_BEGINNING)]
