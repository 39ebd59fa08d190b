"""The sink worker: consume a Debezium topic, batch, apply to the table, then commit offsets.

One loop, one thread::

    consume records ──► decode (typed row, latest per key; tombstones and replays skipped,
                        unparseable records to the dead-letter topic)
         │ batch full (--batch-size) or old enough (--batch-ms)
         ▼
    flush dead letters ─► add new columns ─► ONE table commit (rows + offsets) ─► maintenance
         ─► commit the consumer group's offsets ─► metrics and a commit-log line

The table commit records how far the batch got (Delta: app transactions; Iceberg: snapshot
properties), so a worker killed at any point resumes without loss and without applying a
record twice. SIGTERM (or SIGINT) finishes the batch in hand, commits it and exits 0.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message
from confluent_kafka import TopicPartition as KafkaPartition
from confluent_kafka.admin import AdminClient
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_not_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from cdc_support.events import MalformedEvent, Tombstone
from cdc_support.sinks.base import SinkConflict, SinkError, TableSink, ranges_json
from cdc_support.sinks.batching import MicroBatch, Positions, RowDecoder
from cdc_support.sinks.commit_log import CommitLog, positions_field
from cdc_support.sinks.config import WorkerConfig
from cdc_support.sinks.dlq import DeadLetterQueue, ensure_topic
from cdc_support.sinks.metrics import SinkMetrics

__all__ = ["SinkWorker"]

log = logging.getLogger("cdc_support.sinks")

COMMIT_ATTEMPTS = 3
IDLE_POLL_SECONDS = 0.25


class SinkWorker:
    """Applies one topic to one table; :meth:`run` until stopped (or ``until`` holds)."""

    def __init__(self, config: WorkerConfig, *, sink: TableSink | None = None) -> None:
        self.config = config
        self.sink = sink or config.target.open(app_id=config.app_id, policy=config.policy)
        self.metrics = SinkMetrics()
        self.commit_log = CommitLog(config.commit_log)
        self.decoder = RowDecoder(config.target.key, self.sink.table_columns())
        self.stored: Positions = {}
        self.consumed: Positions = {}
        self.batches = 0
        self.started_at: float | None = None
        self._last_offset_commit = 0.0
        self._uncommitted: Positions = {}
        self._stop = False
        self._server: Any = None
        self._dlq: DeadLetterQueue | None = None
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
            **dict(self.config.consumer_config),
        }

    def start(self) -> None:
        """Serve metrics, make sure the dead-letter topic exists, read the table's position,
        subscribe. Called by :meth:`run`."""
        cfg = self.config
        self.started_at = time.time()
        if cfg.metrics_port is not None:
            self._server = self.metrics.serve(cfg.metrics_port, cfg.metrics_host)
        admin = AdminClient({"bootstrap.servers": cfg.bootstrap})
        ensure_topic(admin, cfg.dead_letter_topic)
        self._dlq = DeadLetterQueue(cfg.bootstrap, cfg.dead_letter_topic, cfg.group)
        self.sink.claim()
        consumer = Consumer(self._consumer_config())
        self._consumer = consumer
        metadata = consumer.list_topics(cfg.topic, timeout=30)
        topic_meta = metadata.topics.get(cfg.topic)
        partitions = sorted(topic_meta.partitions if topic_meta and not topic_meta.error else {})
        tps = [(cfg.topic, p) for p in partitions]
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
        log.info(
            "assigned %s", ", ".join(f"{p.topic}/{p.partition}@{p.offset}" for p in partitions)
        )

    def _on_revoke(self, _consumer: Consumer, partitions: list[KafkaPartition]) -> None:
        self.metrics.assigned.set(0)
        log.info("revoked %s", ", ".join(f"{p.topic}/{p.partition}" for p in partitions))

    def close(self) -> None:
        """Release the consumer, producer, table clients and the metrics server."""
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
        if self._dlq is not None:
            self._dlq.close()
            self._dlq = None
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
                    wait = IDLE_POLL_SECONDS
                room = max(1, min(1000, self.config.batch_size - batch.records))
                for msg in self._consumer.consume(num_messages=room, timeout=wait):
                    self._take(msg, batch)
                full = batch.records >= self.config.batch_size
                if batch.records and (full or batch.age() >= self.config.batch_ms / 1000):
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
            if error.fatal():
                raise KafkaException(error)
            return
        topic, partition, offset = msg.topic() or "", msg.partition() or 0, msg.offset() or 0
        if offset < self.stored.get((topic, partition), -1):
            batch.add_skipped(topic, partition, offset)
            self.metrics.replayed.inc()
            return
        try:
            decoded = self.decoder.decode(msg)
        except (MalformedEvent, ValueError) as exc:
            self._dead_letter(msg, exc)
            batch.add_dead_letter(topic, partition, offset)
            return
        if isinstance(decoded, Tombstone):
            batch.add_tombstone(topic, partition, offset)
            self.metrics.tombstones.inc()
            return
        batch.add_change(topic, partition, offset, decoded)
        self.metrics.events.inc()

    def _dead_letter(self, msg: Message, exc: Exception) -> None:
        assert self._dlq is not None
        kind = "malformed" if isinstance(exc, MalformedEvent) else "bad_value"
        self._dlq.send(msg, str(exc), type(exc).__name__)
        self.metrics.dead_letters.labels(reason=kind).inc()
        log.warning(
            "dead letter: %s/%s@%s -> %s: %s",
            msg.topic(),
            msg.partition(),
            msg.offset(),
            self._dlq.topic,
            exc,
        )

    # ------------------------------------------------------------------ commits

    def _flush(self, batch: MicroBatch) -> None:
        cfg = self.config
        if batch.dead_letters:
            assert self._dlq is not None
            try:
                self._dlq.flush()
            except RuntimeError:
                self.metrics.errors.labels(stage="dead_letter").inc()
                raise
        ranges = {tp: list(span) for tp, span in batch.ranges.items()}
        summary = batch.summary()
        if batch.has_changes:
            columns = self._evolve()
            result = self._write(batch, ranges)
            self.stored.update(batch.next_positions())
            m = self.metrics
            m.batches.inc()
            m.applied.inc(len(batch.events))
            m.commit_latency.observe(result.seconds)
            m.upserted.inc(summary["upserts"])
            m.deleted.inc(summary["deletes"])
            m.last_commit.set(result.visible_at)
            for event in batch.events:
                if event.commit_ts is not None:
                    m.lag.observe(max(0.0, result.visible_at - event.commit_ts))
            self.commit_log.write(
                "commit",
                batch=batch.number,
                topic=cfg.topic,
                version=result.version,
                opened_at=batch.opened_at,
                seconds=result.seconds,
                visible_at=result.visible_at,
                ranges=ranges_json(ranges),
                summary=summary,
                detail=result.detail,
                columns=columns or None,
                events=[
                    [e.partition, e.offset, e.op, list(e.key), e.commit_ts] for e in batch.events
                ],
            )
            log.info(
                "batch %d committed: version %s, %d events (%d upserts, %d deletes, "
                "%d tombstones, %d replayed skipped) in %.3fs",
                batch.number,
                result.version,
                summary["events"],
                summary["upserts"],
                summary["deletes"],
                summary["tombstones"],
                summary["skipped_replayed"],
                result.seconds,
            )
            self._maintain()
        else:
            kind = "skip" if batch.skipped else "consumed"
            if batch.skipped:
                self.metrics.batches_skipped.inc()
            self.commit_log.write(
                kind,
                batch=batch.number,
                topic=cfg.topic,
                ranges=ranges_json(ranges),
                summary=summary,
            )
            log.info("batch %d: nothing to write (%s)", batch.number, summary)
        self.batches = batch.number
        self._commit_offsets(batch.next_positions())

    def _evolve(self) -> dict[str, Any]:
        if not self.decoder.pending and self.sink.table_columns() is not None:
            return {}
        exists = self.sink.table_columns() is not None
        names = list(self.decoder.pending) if exists else self.decoder.order
        columns = [self.decoder.columns[n] for n in names if n in self.decoder.columns]
        change = self.sink.ensure_columns(columns)
        self.decoder.table_changed(self.sink.table_columns() or {})
        if change:
            log.info("table columns: %s", change)
        return change

    def _write(self, batch: MicroBatch, ranges: dict[Any, list[int]]) -> Any:
        """One table commit, retried with backoff (0.5 s, 1 s) unless another writer won."""

        def count_and_log(state: RetryCallState) -> None:
            self.metrics.errors.labels(stage="commit").inc()
            log.warning(
                "commit of batch %d failed (%s); retrying",
                batch.number,
                state.outcome.exception() if state.outcome else "?",
            )

        try:
            for attempt in Retrying(
                stop=stop_after_attempt(COMMIT_ATTEMPTS),
                wait=wait_exponential(multiplier=0.5),
                retry=retry_if_not_exception_type(SinkConflict),
                before_sleep=count_and_log,
                reraise=True,
            ):
                with attempt:
                    return self.sink.write(batch.upserts(), batch.deletes(), ranges, batch.number)
        except SinkConflict:
            self.metrics.errors.labels(stage="commit_conflict").inc()
            raise
        except Exception as exc:
            self.metrics.errors.labels(stage="commit").inc()
            raise SinkError(
                f"batch {batch.number} could not be committed to "
                f"{self.sink.describe()} after {COMMIT_ATTEMPTS} attempts: {exc}"
            ) from exc
        raise AssertionError("unreachable: Retrying either returns or raises")

    def _maintain(self) -> None:
        try:
            done = self.sink.maintain()
        except SinkConflict:
            self.metrics.errors.labels(stage="commit_conflict").inc()
            raise
        except Exception as exc:  # maintenance is not worth stopping the pipeline for
            self.metrics.errors.labels(stage="maintenance").inc()
            log.warning("maintenance failed: %s", exc)
            return
        for item in done:
            self.metrics.maintenance.labels(kind=item["kind"]).observe(item["seconds"])
            self.commit_log.write(
                "maintenance", **{("task" if k == "kind" else k): v for k, v in item.items()}
            )
            log.info("maintenance: %s", item)

    def _commit_offsets(self, positions: Positions, *, force: bool = False) -> None:
        """Commit the group's offsets (after the table commit) at most every
        ``offset_commit_ms``; the table records its own position with every commit."""
        self.consumed.update(positions)
        self._uncommitted.update(positions)
        due = time.monotonic() - self._last_offset_commit >= self.config.offset_commit_ms / 1000
        if self._consumer is None or not self._uncommitted or not (due or force):
            return
        pending, self._uncommitted = self._uncommitted, {}
        offsets = [KafkaPartition(t, p, off) for (t, p), off in sorted(pending.items())]
        try:
            self._consumer.commit(offsets=offsets, asynchronous=False)
            self._last_offset_commit = time.monotonic()
        except KafkaException as exc:
            # the table holds the truth; the next commit (or the table's position) catches up
            self._uncommitted = {**pending, **self._uncommitted}
            self.metrics.errors.labels(stage="kafka_commit").inc()
            log.warning("committing offsets %s failed: %s", positions_field(pending), exc)
