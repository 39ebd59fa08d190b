"""Reading change topics: consume until a condition holds, with a deadline.

Readers assign themselves every partition of their topics from the beginning instead of
joining a consumer group: they never commit, and a group would have to find its coordinator
again after a broker restart (seen: a reader that first polled after a SIGKILLed broker came
back never got its partitions in 300 s). An assigned consumer just reconnects and fetches on.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from cdc_support import naming
from cdc_support.events import ChangeEvent, MalformedEvent, Tombstone
from cdc_support.kafka.envelope import parse_message
from cdc_support.waiting import WaitTimeout

METADATA_EVERY = 1.0
"""Seconds between metadata requests for the topics a reader has not found yet."""
METADATA_TIMEOUT = 0.5

PASSING_ERRORS = frozenset(
    {
        KafkaError._PARTITION_EOF,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        # the group coordinator moving or starting, e.g. while the broker restarts: librdkafka
        # finds it again by itself, though it does not flag these retriable
        KafkaError.NOT_COORDINATOR,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
    }
)
"""Consumer errors a reader reads on after: the end of a partition, a topic not there yet, a
broker or coordinator coming back."""


def reading_consumer(bootstrap: str, prefix: str) -> Consumer:
    """A consumer that reads from the beginning and never commits (its group id is never
    joined: partitions are assigned by :class:`Assignment`)."""
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": naming.group_id(prefix),
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "topic.metadata.refresh.interval.ms": 1000,
            "allow.auto.create.topics": False,
        }
    )


class Assignment:
    """Assigns ``consumer`` every partition of ``topics`` from the beginning, as each topic
    appears (a topic a connector has not created yet is asked for again a second later).
    Partitions a topic gains after it was found are not picked up."""

    def __init__(self, consumer: Consumer, topics: Iterable[str]) -> None:
        self._consumer = consumer
        self.missing = list(topics)
        """Topics not found yet."""
        self._next_ask = 0.0

    def refresh(self) -> None:
        """Assign the partitions of the topics that appeared since the last call (at most one
        metadata request per topic each :data:`METADATA_EVERY` seconds; a broker that does
        not answer is asked again then)."""
        if not self.missing or time.monotonic() < self._next_ask:
            return
        self._next_ask = time.monotonic() + METADATA_EVERY
        found: list[TopicPartition] = []
        for topic in list(self.missing):
            try:
                metadata = self._consumer.list_topics(topic, timeout=METADATA_TIMEOUT)
            except KafkaException:
                return  # the broker is away: ask again later
            described = metadata.topics.get(topic)
            if described is None or described.error is not None or not described.partitions:
                continue
            found += [TopicPartition(topic, p, OFFSET_BEGINNING) for p in described.partitions]
            self.missing.remove(topic)
        if found:
            self._consumer.incremental_assign(found)


@dataclass
class TopicRecords:
    """Records read so far from one or more topics, raw and parsed."""

    records: list[ChangeEvent | Tombstone] = field(default_factory=list)
    malformed: list[MalformedEvent] = field(default_factory=list)
    """Records that could not be parsed (each error names its topic/partition/offset)."""

    @property
    def events(self) -> list[ChangeEvent]:
        """Change events, without tombstones."""
        return [r for r in self.records if isinstance(r, ChangeEvent)]

    @property
    def tombstones(self) -> list[Tombstone]:
        """Tombstones (value null) in topic order."""
        return [r for r in self.records if isinstance(r, Tombstone)]

    def __len__(self) -> int:
        return len(self.records)


class TopicReader:
    """A confluent-kafka consumer reading topics from the beginning, parsing Debezium records.

    A record that cannot be parsed never makes the reader lose the others: the whole batch is
    read, the bad record goes to ``seen.malformed``, and then :meth:`poll_once` raises
    MalformedEvent naming it (unless ``skip_malformed``); the next poll goes on after it.
    Keyless tables' records (null key) are ordinary events and tombstones with ``key=None``.
    """

    def __init__(
        self,
        bootstrap: str,
        topics: Iterable[str],
        *,
        group_id: str | None = None,
        parse: Callable[[Message], ChangeEvent | Tombstone] = parse_message,
        skip_malformed: bool = False,
        consumer: Consumer | None = None,
    ) -> None:
        self.topics = list(topics)
        self._parse = parse
        self.skip_malformed = skip_malformed
        self._consumer = consumer or reading_consumer(bootstrap, "reader")
        self._assignment = Assignment(self._consumer, self.topics)
        self._assignment.refresh()
        self.seen = TopicRecords()

    def __repr__(self) -> str:
        return f"TopicReader({', '.join(self.topics)}; {len(self.seen)} read)"

    def poll_once(self, timeout: float = 0.5) -> int:
        """Read what is available now; returns how many records were added.

        Raises MalformedEvent after the batch if a record in it could not be parsed (and
        ``skip_malformed`` is off); every other record of the batch has been kept.
        """
        added = 0
        bad: list[MalformedEvent] = []
        self._assignment.refresh()
        for msg in self._consumer.consume(num_messages=500, timeout=timeout):
            error = msg.error()
            if error is not None:
                if error.code() in PASSING_ERRORS:
                    continue
                if error.retriable() and not error.fatal():  # e.g. a broker restarting
                    continue
                raise RuntimeError(f"Kafka error while reading {self.topics}: {error}")
            try:
                self.seen.records.append(self._parse(msg))
            except MalformedEvent as exc:
                bad.append(exc)
                continue
            added += 1
        self.seen.malformed.extend(bad)
        if bad and not self.skip_malformed:
            more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
            raise MalformedEvent(
                f"{bad[0]}{more}; the other records were kept in reader.seen and reading "
                "goes on at the next poll (TopicReader(skip_malformed=True) only collects them)"
            ) from bad[0]
        return added

    def drain(self, timeout: float = 1.0) -> list[ChangeEvent]:
        """Read until a poll brings nothing new (the first poll waits up to ``timeout``);
        every change event read so far."""
        self.poll_once(timeout=timeout)
        while self.poll_once(timeout=0.2):
            pass
        return self.seen.events

    def read_until(
        self,
        done: Callable[[TopicRecords], bool],
        *,
        timeout: float,
        expected: str,
    ) -> TopicRecords:
        """Consume until `done(seen)` holds; on deadline raise WaitTimeout (expected vs seen)."""
        started = time.monotonic()
        deadline = started + timeout
        polls = 0
        while not done(self.seen):
            if time.monotonic() >= deadline:
                raise WaitTimeout(
                    f"{expected} on {', '.join(self.topics)}",
                    f"{len(self.seen.events)} change events, "
                    f"{len(self.seen.tombstones)} tombstones and "
                    f"{len(self.seen.malformed)} malformed records",
                    elapsed=time.monotonic() - started,
                    attempts=polls,
                    hint="is the connector RUNNING? its status and the Connect log tell.",
                )
            self.poll_once(timeout=min(0.5, max(0.05, deadline - time.monotonic())))
            polls += 1
        return self.seen

    def read_count(self, count: int, *, timeout: float) -> TopicRecords:
        """Consume until at least `count` change events (tombstones not counted) arrived."""
        return self.read_until(
            lambda seen: len(seen.events) >= count,
            timeout=timeout,
            expected=f"{count} change events",
        )

    def written(self, timeout: float = 5.0) -> int:
        """Records the topics hold now (end offsets summed; 0 for a topic not there yet),
        asked of the broker, however far this reader has read."""
        total = 0
        for topic in self.topics:
            metadata = self._consumer.list_topics(topic, timeout=timeout).topics.get(topic)
            if metadata is None or metadata.error is not None:
                continue
            for partition in metadata.partitions:
                _, high = self._consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), timeout=timeout, cached=False
                )
                total += max(0, high)
        return total

    def close(self) -> None:
        """Release the client."""
        self._consumer.close()


def read_json_values(
    bootstrap: str,
    topic: str,
    *,
    done: Callable[[list[dict]], bool],
    timeout: float,
    expected: str,
) -> list[dict]:
    """Read a non-change topic (e.g. a schema history topic) from the start as JSON objects,
    until ``done(values)`` holds; WaitTimeout (expected vs seen) at the deadline."""
    consumer = reading_consumer(bootstrap, "raw")
    assignment = Assignment(consumer, [topic])
    values: list[dict] = []
    started = time.monotonic()
    polls = 0
    try:
        while not done(values):
            if time.monotonic() - started >= timeout:
                raise WaitTimeout(
                    f"{expected} on {topic}",
                    f"{len(values)} records",
                    elapsed=time.monotonic() - started,
                    attempts=polls,
                )
            assignment.refresh()
            for msg in consumer.consume(num_messages=500, timeout=0.5):
                if msg.error() is None and msg.value() is not None:
                    values.append(json.loads(msg.value()))
            polls += 1
    finally:
        consumer.close()
    return values
