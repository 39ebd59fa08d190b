"""A worker's dead letters: each record it cannot apply sent with its reason, counted, logged.

The topic, its headers and the producer are :mod:`~cdc_support.sinks.dlq`'s; this is what the
worker does around them: the reason on one line, the error class (``TableRefused`` for a record
the table refused), the ``cdc_sink_dead_letters_total{reason}`` metric, a warning in the log,
and a flush before any table commit covers the dead letters' offsets.
"""

from __future__ import annotations

import logging
from typing import Any

from confluent_kafka.admin import AdminClient

from cdc_support.events import MalformedEvent
from cdc_support.sinks.dlq import DeadLetterQueue, ensure_topic
from cdc_support.sinks.metrics import SinkMetrics
from cdc_support.sinks.screening import one_line

__all__ = ["DeadLetters"]

log = logging.getLogger("cdc_support.sinks")


class DeadLetters:
    """The worker's side of its dead-letter topic (:meth:`open` connects it)."""

    def __init__(self, metrics: SinkMetrics) -> None:
        self.metrics = metrics
        self.queue: DeadLetterQueue | None = None

    def __repr__(self) -> str:
        return f"DeadLetters({self.queue!r})"

    def open(self, bootstrap: str, topic: str, group: str) -> None:
        """Make sure ``topic`` exists and start its producer."""
        admin = AdminClient(
            {
                "bootstrap.servers": bootstrap,
                # its messages (e.g. "Purging ... background queue" when it is dropped) as
                # log records, so the worker's log stays JSON lines
                "logger": logging.getLogger("cdc_support.sinks.librdkafka"),
            }
        )
        ensure_topic(admin, topic)
        self.queue = DeadLetterQueue(bootstrap, topic, group)

    def send(self, msg: Any, exc: Exception | str, kind: str | None = None) -> None:
        """Send ``msg`` to the dead-letter topic with the reason (one line)."""
        assert self.queue is not None
        if kind is None:
            kind = "malformed" if isinstance(exc, MalformedEvent) else "bad_value"
        reason = one_line(exc)
        error = type(exc).__name__ if isinstance(exc, Exception) else "TableRefused"
        self.queue.send(msg, reason, error)
        self.metrics.dead_letters.labels(reason=kind).inc()
        log.warning(
            "dead letter: %s/%s@%s -> %s: %s",
            msg.topic(),
            msg.partition(),
            msg.offset(),
            self.queue.topic,
            reason,
        )

    def flush(self) -> None:
        """Wait until every dead letter sent is written (counted as an error if not)."""
        assert self.queue is not None
        try:
            self.queue.flush()
        except RuntimeError:
            self.metrics.errors.labels(stage="dead_letter").inc()
            raise

    def close(self) -> None:
        """Flush what is queued (best effort) and drop the producer."""
        if self.queue is not None:
            self.queue.close()
            self.queue = None
