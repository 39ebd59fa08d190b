"""The dead-letter topic: records a sink cannot apply, kept with the reason in their headers.

A record that is not a Debezium change event (not JSON, no envelope, the JSON literal
``null``, a row without its key column, a value that does not fit its column, a row the table
itself refuses) would otherwise stop the sink for good, or be dropped silently. The worker
produces it unchanged (same key, same value, same headers) to ``<topic>.dlq`` and adds:

=========================  ===========================================================
header                     value
=========================  ===========================================================
``cdc.dlq.reason``         why it could not be applied (one line)
``cdc.dlq.error``          the error class (``MalformedEvent``, ``ValueError``,
                           ``TableRefused``)
``cdc.dlq.topic``          the source topic
``cdc.dlq.partition``      the source partition
``cdc.dlq.offset``         the source offset
``cdc.dlq.timestamp``      the source record's timestamp (epoch ms), if it had one
``cdc.dlq.worker``         the consumer group of the worker that gave up on it
=========================  ===========================================================

Dead letters are flushed before the batch that consumed them is committed, so none is lost;
after a crash a dead letter may be produced twice (the headers name its source offset, so a
reader can tell).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from confluent_kafka import KafkaException, Producer
from confluent_kafka import TopicPartition as KafkaPartition
from confluent_kafka.admin import AdminClient, NewTopic

from cdc_support.kafka.envelope import KafkaMessageLike
from cdc_support.kafka.topics import Assignment, reading_consumer
from cdc_support.waiting import WaitTimeout

__all__ = [
    "HEADER_PREFIX",
    "DeadLetterQueue",
    "count_records",
    "dlq_headers",
    "dlq_topic_for",
    "ensure_topic",
    "read_dead_letters",
]

HEADER_PREFIX = "cdc.dlq."
TIMESTAMP_NOT_AVAILABLE = 0


def dlq_topic_for(topic: str) -> str:
    """The default dead-letter topic of ``topic``."""
    return f"{topic}.dlq"


def dlq_headers(
    msg: KafkaMessageLike, reason: str, error: str, worker: str
) -> list[tuple[str, bytes]]:
    """The original headers followed by the ``cdc.dlq.*`` ones (values UTF-8 bytes)."""
    original = getattr(msg, "headers", None)
    headers: list[tuple[str, bytes]] = []
    for name, value in (original() if callable(original) else None) or []:
        headers.append((name, value if isinstance(value, bytes) else str(value).encode()))
    ts_type, ts_ms = msg.timestamp()
    added: list[tuple[str, Any]] = [
        ("reason", reason),
        ("error", error),
        ("topic", msg.topic()),
        ("partition", msg.partition()),
        ("offset", msg.offset()),
        ("timestamp", "" if ts_type == TIMESTAMP_NOT_AVAILABLE else ts_ms),
        ("worker", worker),
    ]
    headers.extend((HEADER_PREFIX + k, str(v).encode("utf-8")) for k, v in added)
    return headers


def ensure_topic(
    admin: AdminClient, topic: str, *, partitions: int = 1, timeout: float = 30
) -> bool:
    """Create ``topic`` unless it exists; True when it was created."""
    if topic in admin.list_topics(timeout=timeout).topics:
        return False
    futures = admin.create_topics([NewTopic(topic, num_partitions=partitions)])
    try:
        futures[topic].result(timeout=timeout)
    except KafkaException as exc:
        if "TOPIC_ALREADY_EXISTS" not in str(exc):
            raise
        return False
    return True


class DeadLetterQueue:
    """Produces records a sink cannot apply to a dead-letter topic (idempotent producer)."""

    def __init__(self, bootstrap: str, topic: str, worker: str) -> None:
        self.topic = topic
        self.worker = worker
        self.sent = 0
        self._errors: list[str] = []
        self._producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "enable.idempotence": True,
                "linger.ms": 5,
                "client.id": f"cdc-spec-sink-dlq-{worker}",
                "logger": logging.getLogger("cdc_support.sinks.librdkafka"),
            }
        )

    def __repr__(self) -> str:
        return f"DeadLetterQueue({self.topic}, {self.sent} sent)"

    def send(self, msg: KafkaMessageLike, reason: str, error: str) -> None:
        """Queue the record with its reason; :meth:`flush` makes sure it was written."""
        self._producer.produce(
            self.topic,
            key=msg.key(),
            value=msg.value(),
            headers=dlq_headers(msg, reason, error, self.worker),
            on_delivery=self._delivered,
        )
        self._producer.poll(0)
        self.sent += 1

    def _delivered(self, err: Any, _msg: Any) -> None:
        if err is not None:
            self._errors.append(str(err))

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until every queued dead letter is written; RuntimeError if one was not."""
        remaining = self._producer.flush(timeout)
        errors, self._errors = self._errors, []
        if remaining or errors:
            raise RuntimeError(
                f"dead-letter topic {self.topic}: {remaining} records not delivered after "
                f"{timeout:.0f}s, errors: {errors or 'none'}"
            )

    def close(self) -> None:
        """Flush what is queued (best effort)."""
        self._producer.flush(10)


def read_dead_letters(
    bootstrap: str, topic: str, *, count: int, timeout: float
) -> Sequence[dict[str, Any]]:
    """Read ``count`` dead letters from the start of ``topic``: key, value and headers as
    text (for reports and checks). WaitTimeout at the deadline."""
    consumer = reading_consumer(bootstrap, "dlq-reader")
    assignment = Assignment(consumer, [topic])
    found: list[dict[str, Any]] = []
    started = time.monotonic()
    polls = 0
    try:
        while len(found) < count:
            if time.monotonic() - started > timeout:
                raise WaitTimeout(
                    f"{count} dead letters on {topic}",
                    f"{len(found)} dead letters",
                    elapsed=time.monotonic() - started,
                    attempts=polls,
                    hint="did the worker start, and is the record really unparseable?",
                )
            assignment.refresh()
            for msg in consumer.consume(num_messages=100, timeout=0.5):
                if msg.error() is not None:
                    continue
                found.append(
                    {
                        "partition": msg.partition(),
                        "offset": msg.offset(),
                        "key": _text(msg.key()),
                        "value": _text(msg.value()),
                        "headers": {k: _text(v) for k, v in (msg.headers() or [])},
                    }
                )
            polls += 1
    finally:
        consumer.close()
    return found


def count_records(bootstrap: str, topic: str, *, timeout: float = 10) -> int:
    """Records on ``topic`` now, from its watermarks (0 when the topic does not exist)."""
    consumer = reading_consumer(bootstrap, "count")
    try:
        meta = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
        if meta is None or meta.error is not None:
            return 0
        total = 0
        for partition in meta.partitions:
            low, high = consumer.get_watermark_offsets(
                KafkaPartition(topic, partition), timeout=timeout
            )
            total += high - low
        return total
    finally:
        consumer.close()


def _text(raw: bytes | None) -> str | None:
    return None if raw is None else raw.decode("utf-8", errors="replace")
