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

No single record stops a worker. Should the table refuse a commit for its data (a CHECK
constraint, a required column: rules the worker cannot see), the batch is split in halves in
arrival order and each half committed on its own, down to the record the table refuses,
which goes to the dead-letter topic; every part records exactly the offsets it holds, so the
commit log and the table's position stay exact. Other commit failures are retried, then stop
the worker (a restart resumes from the table's position).

Before consuming, the worker checks that Kafka answers (:mod:`~cdc_support.sinks.preflight`)
and says once if its topic does not exist yet. A worker told something that cannot work
(``--key`` columns that are not in the table or in keyless records, ...) raises
:class:`~cdc_support.sinks.errors.SinkConfigError`.

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
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from cdc_support.events import MalformedEvent, Tombstone
from cdc_support.sinks.base import SinkConflict, SinkError, TableSink, ranges_json
from cdc_support.sinks.batching import BatchItem, MicroBatch, Positions, RowDecoder
from cdc_support.sinks.commit_log import CommitLog, positions_field
from cdc_support.sinks.config import WorkerConfig
from cdc_support.sinks.dlq import DeadLetterQueue, ensure_topic
from cdc_support.sinks.errors import SinkConfigError
from cdc_support.sinks.metrics import SinkMetrics
from cdc_support.sinks.preflight import kafka_partitions, missing_topic_message
from cdc_support.sinks.screening import is_data_error, one_line, unfit_rows
from cdc_support.sinks.unavailable import UNAVAILABLE

__all__ = ["SinkWorker"]

log = logging.getLogger("cdc_support.sinks")

COMMIT_ATTEMPTS = 3
IDLE_POLL_SECONDS = 0.25


class _Refused(Exception):
    """The table refused a commit for its data (the message says why, on one line)."""


def _transient(exc: BaseException) -> bool:
    """Worth retrying: neither another writer's commit nor data the table refuses."""
    return not isinstance(exc, SinkConflict) and not is_data_error(exc)


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
        admin = AdminClient({"bootstrap.servers": cfg.bootstrap})
        ensure_topic(admin, cfg.dead_letter_topic)
        self._dlq = DeadLetterQueue(cfg.bootstrap, cfg.dead_letter_topic, cfg.group)
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
        except SinkConfigError:
            raise  # no record of the topic can be applied: dead-lettering them all would hide it
        except (MalformedEvent, ValueError) as exc:
            self._dead_letter(msg, exc)
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

    def _dead_letter(self, msg: Any, exc: Exception | str, kind: str | None = None) -> None:
        """Send ``msg`` to the dead-letter topic with the reason (one line)."""
        assert self._dlq is not None
        if kind is None:
            kind = "malformed" if isinstance(exc, MalformedEvent) else "bad_value"
        reason = one_line(exc)
        error = type(exc).__name__ if isinstance(exc, Exception) else "TableRefused"
        self._dlq.send(msg, reason, error)
        self.metrics.dead_letters.labels(reason=kind).inc()
        log.warning(
            "dead letter: %s/%s@%s -> %s: %s",
            msg.topic(),
            msg.partition(),
            msg.offset(),
            self._dlq.topic,
            reason,
        )

    def _reject(self, batch: MicroBatch, item: BatchItem, reason: str, kind: str) -> None:
        """A change event the table cannot take: to the dead-letter topic, out of the batch."""
        assert item.msg is not None
        self._dead_letter(item.msg, reason, kind)
        batch.reject(item)

    # ------------------------------------------------------------------ commits

    def _flush(self, batch: MicroBatch) -> None:
        """Screen the batch, apply it (isolating what the table refuses), commit offsets."""
        self._screen(batch)
        self._apply(batch)
        self.batches = batch.number
        self._commit_offsets(batch.next_positions())

    def _column_types(self) -> dict[str, Any]:
        """Arrow type per known column: the table's, else the one the decoder resolved."""
        types = {n: c.arrow_type for n, c in self.decoder.columns.items()}
        types.update(self.decoder.table_columns)
        return types

    def _screen(self, batch: MicroBatch) -> None:
        """Dead-letter every change event with a value its column cannot hold (all rows are
        converted at once; row by row only when that fails)."""
        items = batch.change_items()
        if not items:
            return
        rows = [self._row_to_check(item) for item in items]
        for index, reason in sorted(unfit_rows(rows, self._column_types()).items()):
            item = items[index]
            where = f"{item.topic}/{item.partition}@{item.offset}"
            self._reject(batch, item, f"{reason} at {where}", "bad_value")

    def _row_to_check(self, item: BatchItem) -> dict[str, Any]:
        """The values a change event writes (a delete: its key), unchanged-TOAST marks left
        out (the table's value is kept for those)."""
        decoded = item.decoded
        assert decoded is not None
        row = decoded.row
        if row is None:
            row = dict(zip(self.decoder.key, decoded.key, strict=True))
        return {name: value for name, value in row.items() if value is not UNAVAILABLE}

    def _flush_dead_letters(self) -> None:
        assert self._dlq is not None
        try:
            self._dlq.flush()
        except RuntimeError:
            self.metrics.errors.labels(stage="dead_letter").inc()
            raise

    def _apply(self, batch: MicroBatch) -> None:
        """One table commit for the batch. If the table refuses its data, its halves are
        committed one after the other, down to the record it refuses (dead-lettered)."""
        if batch.dead_letters:
            self._flush_dead_letters()  # before any commit covers their offsets
        if not batch.has_changes:
            self._log_unwritten(batch)
            return
        ranges = {tp: list(span) for tp, span in batch.ranges.items()}
        try:
            columns = self._evolve(batch)
            result = self._write(batch, ranges)
        except _Refused as refused:
            self.metrics.errors.labels(stage="commit_refused").inc()
            changes = batch.change_items()
            if len(changes) == 1:
                item = changes[0]
                where = f"{item.topic}/{item.partition}@{item.offset}"
                self._reject(
                    batch, item, f"the table refused it: {refused} at {where}", "table_refused"
                )
                self._apply(batch)
                return
            first, second = batch.split()
            log.warning(
                "batch %d%s: the table refused its data (%s); committing its %d change events "
                "in two parts to find the record(s) it refuses",
                batch.number,
                f" part {batch.part}" if batch.part else "",
                refused,
                len(changes),
            )
            self._apply(first)
            self._apply(second)
            return
        self._log_commit(batch, ranges, columns, result)
        self._maintain()

    def _log_commit(
        self, batch: MicroBatch, ranges: dict[Any, list[int]], columns: dict[str, Any], result: Any
    ) -> None:
        """Metrics, the commit-log line and the log line of a committed batch (or part)."""
        self.stored.update(batch.next_positions())
        summary = batch.summary()
        m = self.metrics
        m.batches.inc()
        m.applied.inc(len(batch.events))
        m.commit_latency.observe(result.seconds)
        m.upserted.inc(summary["upserts"])
        m.deleted.inc(summary["deletes"])
        m.unavailable.inc(summary["unavailable"])
        m.last_commit.set(result.visible_at)
        for event in batch.events:
            if event.commit_ts is not None:
                m.lag.observe(max(0.0, result.visible_at - event.commit_ts))
        self.commit_log.write(
            "commit",
            batch=batch.number,
            **({"part": batch.part} if batch.part else {}),
            topic=self.config.topic,
            version=result.version,
            opened_at=batch.opened_at,
            seconds=result.seconds,
            visible_at=result.visible_at,
            ranges=ranges_json(ranges),
            summary=summary,
            detail=result.detail,
            columns=columns or None,
            events=[[e.partition, e.offset, e.op, list(e.key), e.commit_ts] for e in batch.events],
        )
        log.info(
            "batch %d%s committed: version %s, %d events (%d upserts, %d deletes, "
            "%d tombstones, %d replayed skipped, %d dead letters) in %.3fs",
            batch.number,
            f" part {batch.part}" if batch.part else "",
            result.version,
            summary["events"],
            summary["upserts"],
            summary["deletes"],
            summary["tombstones"],
            summary["skipped_replayed"],
            summary["dead_letters"],
            result.seconds,
        )

    def _log_unwritten(self, batch: MicroBatch) -> None:
        """A batch (or part) with nothing to write: replays, tombstones, dead letters."""
        kind = "skip" if batch.skipped else "consumed"
        if batch.skipped:
            self.metrics.batches_skipped.inc()
        summary = batch.summary()
        self.commit_log.write(
            kind,
            batch=batch.number,
            **({"part": batch.part} if batch.part else {}),
            topic=self.config.topic,
            ranges=ranges_json({tp: list(span) for tp, span in batch.ranges.items()}),
            summary=summary,
        )
        log.info("batch %d: nothing to write (%s)", batch.number, summary)

    def _evolve(self, batch: MicroBatch) -> dict[str, Any]:
        """Create the table, or add the columns it lacks, for the columns this batch writes."""
        exists = self.sink.table_columns() is not None
        if exists and not self.decoder.pending:
            return {}
        used = set(self.decoder.key).union(*(row.keys() for row in batch.upserts()))
        names = list(self.decoder.pending) if exists else self.decoder.order
        columns = [
            self.decoder.columns[n] for n in names if n in self.decoder.columns and n in used
        ]
        if exists and not columns:
            return {}
        try:
            change = self.sink.ensure_columns(columns)
        except Exception as exc:
            if is_data_error(exc):
                raise _Refused(one_line(exc)) from exc
            raise
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
                retry=retry_if_exception(_transient),
                before_sleep=count_and_log,
                reraise=True,
            ):
                with attempt:
                    return self.sink.write(batch.upserts(), batch.deletes(), ranges, batch.number)
        except SinkConflict:
            self.metrics.errors.labels(stage="commit_conflict").inc()
            raise
        except Exception as exc:
            if is_data_error(exc):
                raise _Refused(one_line(exc)) from exc
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
