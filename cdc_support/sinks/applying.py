"""Applying a micro-batch to the table: one commit, and finding the records the table refuses.

For each batch::

    widen columns whose source type grew ─► rows that do not fit the table's types to the
         dead-letter topic ─► flush dead letters ─► add new columns ─► ONE table commit
         (rows + offsets) ─► maintenance ─► metrics and a commit-log line

A column whose source type grew (``int`` to ``bigint``, a numeric's precision) is widened
before the rows are checked, where the table format can (Iceberg; see
:mod:`~cdc_support.sinks.type_changes`); the change is logged and recorded in the next
commit-log line's ``columns``.

No single record stops a worker. Should the table refuse a commit for its data (a CHECK
constraint, a required column: rules the worker cannot see), the batch is split in halves in
arrival order and each half committed on its own, down to the record the table refuses,
which goes to the dead-letter topic; every part records exactly the offsets it holds, so the
commit log and the table's position stay exact. Other commit failures are retried, then stop
the worker (a restart resumes from the table's position).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from cdc_support.sinks.base import SinkConflict, SinkError, TableSink, ranges_json
from cdc_support.sinks.batching import BatchItem, MicroBatch
from cdc_support.sinks.commit_log import CommitLog
from cdc_support.sinks.dead_letters import DeadLetters
from cdc_support.sinks.decoding import RowDecoder
from cdc_support.sinks.metrics import SinkMetrics
from cdc_support.sinks.positions import Positions
from cdc_support.sinks.screening import is_data_error, one_line, unfit_rows
from cdc_support.sinks.unavailable import UNAVAILABLE

__all__ = ["COMMIT_ATTEMPTS", "BatchApplier"]

log = logging.getLogger("cdc_support.sinks")

COMMIT_ATTEMPTS = 3


class _Refused(Exception):
    """The table refused a commit for its data (the message says why, on one line)."""


def _transient(exc: BaseException) -> bool:
    """Worth retrying: neither another writer's commit nor data the table refuses."""
    return not isinstance(exc, SinkConflict) and not is_data_error(exc)


@dataclass(repr=False)
class BatchApplier:
    """Applies the micro-batches of one topic to one table (:meth:`apply`)."""

    sink: TableSink
    decoder: RowDecoder
    dead_letters: DeadLetters
    metrics: SinkMetrics
    commit_log: CommitLog
    topic: str
    _changed: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"BatchApplier({self.topic} -> {self.sink.describe()})"

    def apply(self, batch: MicroBatch) -> Positions:
        """Screen the batch and apply it (isolating what the table refuses); the positions
        the table recorded with its commits."""
        self._widen()
        self._screen(batch)
        return self._apply(batch)

    def _widen(self) -> None:
        """Widen the table's columns whose source type grew (asked for by the decoder), so
        the batch's values are checked against the wider types."""
        known = self.sink.table_columns()
        wider = [c for n, c in self.decoder.pending.items() if known and n in known]
        if not wider:
            return
        try:
            change = self.sink.ensure_columns(wider)
        except SinkConflict:
            raise
        except Exception as exc:  # the table refused the new type: keep the old one
            self.metrics.errors.labels(stage="commit_refused").inc()
            for column in wider:
                self.decoder.keep(column.name, f"widening refused: {one_line(exc, 200)}")
            return
        self.decoder.table_changed(self.sink.table_columns() or {})
        if change:
            log.info("table columns: %s", change)
            self._changed.update(change)

    def _reject(self, batch: MicroBatch, item: BatchItem, reason: str, kind: str) -> None:
        """A change event the table cannot take: to the dead-letter topic, out of the batch."""
        assert item.msg is not None
        self.dead_letters.send(item.msg, reason, kind)
        batch.reject(item)

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

    def _apply(self, batch: MicroBatch) -> Positions:
        """One table commit for the batch. If the table refuses its data, its halves are
        committed one after the other, down to the record it refuses (dead-lettered)."""
        if batch.dead_letters:
            self.dead_letters.flush()  # before any commit covers their offsets
        if not batch.has_changes:
            self._log_unwritten(batch)
            return {}
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
                return self._apply(batch)
            first, second = batch.split()
            log.warning(
                "batch %d%s: the table refused its data (%s); committing its %d change events "
                "in two parts to find the record(s) it refuses",
                batch.number,
                f" part {batch.part}" if batch.part else "",
                refused,
                len(changes),
            )
            committed = self._apply(first)
            committed.update(self._apply(second))
            return committed
        if self._changed:
            columns, self._changed = {**self._changed, **columns}, {}
        self._log_commit(batch, ranges, columns, result)
        self._maintain()
        return batch.next_positions()

    def _log_commit(
        self, batch: MicroBatch, ranges: dict[Any, list[int]], columns: dict[str, Any], result: Any
    ) -> None:
        """Metrics, the commit-log line and the log line of a committed batch (or part)."""
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
            topic=self.topic,
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
            topic=self.topic,
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
