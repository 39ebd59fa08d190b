"""The sink worker: consume a Debezium topic, batch, apply to the table, then commit offsets.

One loop, one thread::

    consume records ──► decode and check (typed row, key present and non-null; latest per
                        key; tombstones and replays skipped; records that cannot be applied
                        to the dead-letter topic)
         │ batch full (--batch-size) or old enough (--batch-ms)
         ▼
    rows that do not fit the table's types to the dead-letter topic ─► flush dead letters
         ─► add new columns ─► ONE table commit (rows + offsets) ─► maintenance
         ─► commit the consumer group's offsets ─► metrics and a commit-log line

No single record stops a worker: a record that cannot be applied goes to the dead-letter topic
(:mod:`~cdc_support.sinks.dead_letters`), and when the table refuses a commit for its data the
batch is committed in halves down to the record it refuses
(:mod:`~cdc_support.sinks.applying`). Other commit failures are retried, then stop the worker
(a restart resumes from the table's position).

Before consuming, the worker checks that Kafka answers (:mod:`~cdc_support.sinks.preflight`)
and says once if its topic does not exist yet. A worker told something that cannot work
(``--key`` columns that are not in the table or in keyless records, ...) raises
:class:`~cdc_support.sinks.errors.SinkConfigError`.

The table commit records how far the batch got (Delta: app transactions; Iceberg: snapshot
properties), so a worker killed at any point resumes without loss and without applying a
record twice. SIGTERM (or SIGINT) finishes the batch in hand, commits it and exits 0.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, Consumer, KafkaError, KafkaException, Message
from confluent_kafka import TopicPartition as KafkaPartition

from cdc_support.events import MalformedEvent, Tombstone
from cdc_support.sinks.applying import BatchApplier
from cdc_support.sinks.base import TableSink
from cdc_support.sinks.batching import MicroBatch
from cdc_support.sinks.commit_log import CommitLog, positions_field
from cdc_support.sinks.config import WorkerConfig
from cdc_support.sinks.dead_letters import DeadLetters
from cdc_support.sinks.decoding import RowDecoder
from cdc_support.sinks.errors import SinkConfigError
from cdc_support.sinks.metrics import SinkMetrics
from cdc_support.sinks.positions import Positions
from cdc_support.sinks.preflight import kafka_partitions, missing_topic_message

__all__ = ["SinkWorker"]

log = logging.getLogger("cdc_support.sinks")
librdkafka_log = logging.getLogger("cdc_support.sinks.librdkafka")

IDLE_POLL_SECONDS = 0.25


class ConsumerFenced(Exception):
    """The Kafka consumer hit a fatal error: it cannot consume or commit again."""


class SinkWorker:
    """Applies one topic to one table; :meth:`run` until stopped (or ``until`` holds)."""

    def __init__(self, config: WorkerConfig, *, sink: TableSink | None = None) -> None:
        self.config = config
        self.sink = sink or config.target.open(app_id=config.app_id, policy=config.policy)
        table_columns = self.sink.table_columns()
        missing = [k for k in config.target.key if table_columns and k not in table_columns]
        if missing:
            self.sink.close()
            raise SinkConfigError(
                f"--key {','.join(config.target.key)}: {self.sink.describe()} has no "
                f"column(s) {missing} (columns: "
                f"{', '.join(table_columns or {})}): --key must name the columns that identify "
                "a row of the table"
            )
        self.metrics = SinkMetrics()
        self.commit_log = CommitLog(config.commit_log)
        self.decoder = RowDecoder(
            config.target.key,
            table_columns,
            placeholder=config.unavailable_placeholder,
            fmt=self.sink.format,
        )
        self.dead_letters = DeadLetters(self.metrics)
        self.applier = BatchApplier(
            self.sink, self.decoder, self.dead_letters, self.metrics, self.commit_log, config.topic
        )
        self.stored: Positions = {}
        self.consumed: Positions = {}
        self.batches = 0
        self.started_at: float | None = None
        self._last_offset_commit = 0.0
        self._flushed = (0.0, 0.0)
        """When the last flush ended (monotonic) and how long it took."""
        self._uncommitted: Positions = {}
        self._stop = False
        self._joined = False
        """True once the consumer got its partitions: only then may it commit offsets."""
        self._server: Any = None
        self._consumer: Consumer | None = None

    def __repr__(self) -> str:
        return f"SinkWorker({self.config.topic} -> {self.sink.describe()})"

    # ------------------------------------------------------------------ lifecycle

    def request_stop(self, *_: Any) -> None:
        """Finish the batch in hand, commit it and return from :meth:`run` (signal-safe)."""
        self._stop = True

    def _consumer_config(self) -> dict[str, Any]:
        return {
            "bootstrap.servers": self.config.bootstrap,
            "group.id": self.config.group,
            "client.id": f"cdc-spec-sink-{self.config.group}",
            "group.instance.id": self.config.group_instance_id,
            "session.timeout.ms": 10000,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "fetch.wait.max.ms": 100,
            "topic.metadata.refresh.interval.ms": 1000,
            "allow.auto.create.topics": False,
            "logger": librdkafka_log,  # its messages as log records (JSON lines), not raw stderr
            **dict(self.config.consumer_config),
        }

    def start(self) -> None:
        """Check that Kafka answers and the topic exists (SinkConfigError, or a warning),
        serve metrics, make sure the dead-letter topic exists, read the table's position,
        subscribe. Called by :meth:`run`."""
        cfg = self.config
        self.started_at = time.time()
        topics = kafka_partitions(cfg.bootstrap)
        if cfg.topic not in topics:
            message = missing_topic_message(cfg.topic, cfg.bootstrap, required=cfg.require_topic)
            if cfg.require_topic:
                raise SinkConfigError(message)
            log.warning("%s", message)
        if cfg.metrics_port is not None:
            self._server = self.metrics.serve(cfg.metrics_port, cfg.metrics_host)
        self.dead_letters.open(cfg.bootstrap, cfg.dead_letter_topic, cfg.group)
        self.sink.claim()
        consumer = Consumer(self._consumer_config())
        self._consumer = consumer
        tps = [(cfg.topic, p) for p in topics.get(cfg.topic, [])]
        self.stored = self.sink.stored_positions(tps)
        committed: Positions = {}
        if tps:
            for tp in consumer.committed([KafkaPartition(t, p) for t, p in tps], timeout=30):
                if tp.offset >= 0:
                    committed[(tp.topic, tp.partition)] = tp.offset
        self.commit_log.write(
            "start",
            pid=os.getpid(),
            topic=cfg.topic,
            group=cfg.group,
            table=self.sink.describe(),
            format=self.sink.format,
            stored=positions_field(self.stored),
            committed=positions_field(committed),
            resume="table position" if self.sink.seek_to_stored else "group offsets",
        )
        log.info(
            "start: %s -> %s; table recorded %s, group %s committed %s; resuming from the %s",
            cfg.topic,
            self.sink.describe(),
            positions_field(self.stored) or "nothing",
            cfg.group,
            positions_field(committed) or "nothing",
            "table's position" if self.sink.seek_to_stored else "group's offsets",
        )
        consumer.subscribe([cfg.topic], on_assign=self._on_assign, on_revoke=self._on_revoke)

    def _on_assign(self, consumer: Consumer, partitions: list[KafkaPartition]) -> None:
        tps = [(p.topic, p.partition) for p in partitions]
        self.stored.update(self.sink.stored_positions(tps))
        if self.sink.seek_to_stored:
            for p in partitions:
                stored = self.stored.get((p.topic, p.partition))
                if stored is not None:
                    p.offset = stored
                    self.consumed[(p.topic, p.partition)] = stored
            consumer.assign(partitions)
        self.metrics.assigned.set(len(partitions))
        self._joined = True
        log.info(
            "assigned %s", ", ".join(f"{p.topic}/{p.partition}@{p.offset}" for p in partitions)
        )

    def _renew_consumer(self, cause: ConsumerFenced) -> None:
        """Replace a consumer that hit a fatal error (e.g. fenced: a broker that restarted
        lost its static member) by a new one in the same group. Nothing is lost: the new one
        starts from the group's committed offsets, and what the table already holds (its
        recorded position) is skipped as replayed."""
        self.metrics.errors.labels(stage="consumer_renewed").inc()
        log.warning("the consumer hit a fatal error (%s); a new one joins the group", cause)
        old, self._consumer = self._consumer, None
        # its pending offsets go with it: committed before the new one joined, they would
        # fence it in turn; the table's position is the truth, the next batch commits again
        self._uncommitted, self._joined = {}, False
        if old is not None:
            with contextlib.suppress(KafkaException, RuntimeError):
                old.close()
        consumer = Consumer(self._consumer_config())
        consumer.subscribe(
            [self.config.topic], on_assign=self._on_assign, on_revoke=self._on_revoke
        )
        self._consumer = consumer

    def _on_revoke(self, _consumer: Consumer, partitions: list[KafkaPartition]) -> None:
        self.metrics.assigned.set(0)
        log.info("revoked %s", ", ".join(f"{p.topic}/{p.partition}" for p in partitions))

    def close(self) -> None:
        """Release the consumer, producer, table clients and the metrics server."""
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
        self.dead_letters.close()
        self.sink.close()
        if self._server is not None:
            self._server.shutdown()
            self._server = None
        self.commit_log.close()

    def run(self, until: Callable[[SinkWorker], bool] | None = None) -> None:
        """Consume and apply until :meth:`request_stop` or ``until(self)`` (checked between
        batches); the batch in hand is committed before returning."""
        self.start()
        assert self._consumer is not None
        batch = MicroBatch(self.batches + 1)
        reason = "stopped"
        try:
            while not self._stop:
                if batch.records:
                    wait = max(0.0, self.config.batch_ms / 1000 - batch.age())
                else:
                    if until is not None and until(self):
                        reason = "done"
                        break
                    # idle: the offsets of the last batches still go to the group once due,
                    # or its lag would read as records behind while the table is up to date
                    self._commit_offsets({})
                    wait = IDLE_POLL_SECONDS
                room = max(1, min(1000, self.config.batch_size - batch.records))
                messages: list[Message] = []
                try:
                    messages = self._consumer.consume(num_messages=room, timeout=wait)
                    for msg in messages:
                        self._take(msg, batch)
                        kind, stamp = msg.timestamp()
                        if batch.records and kind != TIMESTAMP_NOT_AVAILABLE:
                            batch.written_at(stamp / 1000)
                except ConsumerFenced as exc:
                    self._renew_consumer(exc)
                full = batch.records >= self.config.batch_size
                drained = len(messages) < room
                if batch.records and (full or (drained and self._due(batch))):
                    self._flush(batch)
                    batch = MicroBatch(self.batches + 1)
            if batch.records:
                self._flush(batch)
            self._commit_offsets({}, force=True)
        except BaseException as exc:
            reason = f"failed: {type(exc).__name__}: {exc}"
            raise
        finally:
            self.commit_log.write("stop", reason=reason, batches=self.batches)
            self.close()

    def positions_reached(self, targets: Positions) -> bool:
        """True when every partition in ``targets`` was consumed up to its offset."""
        return all(self.consumed.get(tp, -1) >= off for tp, off in targets.items())

    # ------------------------------------------------------------------ records

    def _take(self, msg: Message, batch: MicroBatch) -> None:
        error = msg.error()
        if error is not None:
            if error.code() in (KafkaError._PARTITION_EOF, KafkaError.UNKNOWN_TOPIC_OR_PART):
                return
            self.metrics.errors.labels(stage="consume").inc()
            log.warning("consume error: %s", error)
            if error.fatal() or error.code() == KafkaError._FATAL:
                raise ConsumerFenced(error)
            return
        topic, partition, offset = msg.topic() or "", msg.partition() or 0, msg.offset() or 0
        if offset < self.stored.get((topic, partition), -1):
            batch.add_skipped(topic, partition, offset)
            self.metrics.replayed.inc()
            return
        try:
            decoded = self.decoder.decode(msg)
        except SinkConfigError:
            raise  # no record of the topic can be applied: dead-lettering them all would hide it
        except (MalformedEvent, ValueError) as exc:
            self.dead_letters.send(msg, exc)
            batch.add_dead_letter(topic, partition, offset)
            return
        if isinstance(decoded, Tombstone):
            keyless = decoded.key is None
            batch.add_tombstone(topic, partition, offset, keyless=keyless)
            self.metrics.tombstones.inc()
            if keyless:
                self.metrics.keyless_tombstones.inc()
            return
        batch.add_change(topic, partition, offset, decoded, msg)
        self.metrics.events.inc()

    # ------------------------------------------------------------------ commits

    def _due(self, batch: MicroBatch) -> bool:
        """A batch is due once its oldest record has waited the batch time since it reached
        Kafka (the commit before counts) and the worker has been as long out of commits as
        the last one took: a worker whose commits are slow (Iceberg rewrites every file
        holding a key of the batch) spends at most half its time committing and its batches
        grow, so it keeps up; one whose commits are quick commits again soon. A due batch
        still takes what the consumer holds already: it is committed once a poll comes
        back short, so a backlog fills whole batches."""
        ended, took = self._flushed
        rested = time.monotonic() - ended >= min(self.config.batch_ms / 1000, took)
        return rested and batch.age() >= self.config.batch_ms / 1000

    def _flush(self, batch: MicroBatch) -> None:
        """Apply the batch (:class:`~cdc_support.sinks.applying.BatchApplier`), then commit
        the group's offsets."""
        started = time.monotonic()
        self.stored.update(self.applier.apply(batch))
        ended = time.monotonic()
        self._flushed = (ended, ended - started)
        self.batches = batch.number
        self._commit_offsets(batch.next_positions())

    def _commit_offsets(self, positions: Positions, *, force: bool = False) -> None:
        """Commit the group's offsets (after the table commit) at most every
        ``offset_commit_ms``; the table records its own position with every commit."""
        self.consumed.update(positions)
        self._uncommitted.update(positions)
        due = time.monotonic() - self._last_offset_commit >= self.config.offset_commit_ms / 1000
        if self._consumer is None or not self._joined or not self._uncommitted:
            return
        if not (due or force):
            return
        pending, self._uncommitted = self._uncommitted, {}
        offsets = [KafkaPartition(t, p, off) for (t, p), off in sorted(pending.items())]
        try:
            self._consumer.commit(offsets=offsets, asynchronous=False)
            self._last_offset_commit = time.monotonic()
        except KafkaException as exc:
            if exc.args and getattr(exc.args[0], "fatal", lambda: False)():
                self._renew_consumer(ConsumerFenced(exc.args[0]))
                return
            # the table holds the truth; the next commit (or the table's position) catches up
            self._uncommitted = {**pending, **self._uncommitted}
            self.metrics.errors.labels(stage="kafka_commit").inc()
            log.warning("committing offsets %s failed: %s", positions_field(pending), exc)
