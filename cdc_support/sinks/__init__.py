"""Sink workers: Debezium topics applied to Delta Lake and Apache Iceberg tables, exactly once.

* :mod:`~cdc_support.sinks.columns` — Debezium fields (Kafka Connect schema, or inferred) as
  typed sink columns, per table format;
* :mod:`~cdc_support.sinks.unavailable` — Debezium's placeholder for an unchanged TOAST value,
  and keeping the previous value instead;
* :mod:`~cdc_support.sinks.samples` — a table of every common PostgreSQL type, for features;
* :mod:`~cdc_support.sinks.batching` — decoding records, micro-batches with the latest event
  per key, tombstones, replays, offsets per partition;
* :mod:`~cdc_support.sinks.delta_sink` — MERGE per batch with a Delta app transaction per
  partition;
* :mod:`~cdc_support.sinks.iceberg_sink` — delete + append per batch with the offsets in the
  snapshot summary, snapshot expiry and compaction, one writer per table;
* :mod:`~cdc_support.sinks.dlq` — the dead-letter topic;
* :mod:`~cdc_support.sinks.screening` — values that do not fit the table, and telling a
  commit the table refused for its data from one that failed for another reason;
* :mod:`~cdc_support.sinks.preflight` — Kafka answers, the topic exists (before consuming);
* :mod:`~cdc_support.sinks.errors` — why a worker stops (config error, conflict, other);
* :mod:`~cdc_support.sinks.poison` and :mod:`~cdc_support.sinks.table_rules` — records a sink
  cannot apply and tables that refuse rows, for features;
* :mod:`~cdc_support.sinks.metrics` — Prometheus metrics of a worker;
* :mod:`~cdc_support.sinks.commit_log` — one JSON line per batch, and the exactly-once audit;
* :mod:`~cdc_support.sinks.worker` — the consume → batch → commit → commit-offsets loop;
* :mod:`~cdc_support.sinks.cli` — ``cdc-spec sink``: the worker as a process of its own.
"""

from cdc_support.sinks.base import (
    CommitResult,
    MaintenancePolicy,
    SinkConfigError,
    SinkConflict,
    SinkError,
    TableSink,
)
from cdc_support.sinks.batching import Decoded, MicroBatch, RowDecoder, latest_per_key
from cdc_support.sinks.columns import Column, column_from_connect, column_from_value
from cdc_support.sinks.commit_log import (
    CommitLog,
    SinkAudit,
    applied_events,
    audit,
    lag_samples,
    read_commit_log,
)
from cdc_support.sinks.config import FORMATS, SinkTarget, WorkerConfig
from cdc_support.sinks.dlq import DeadLetterQueue, dlq_headers, dlq_topic_for, read_dead_letters

__all__ = [
    "FORMATS",
    "Column",
    "CommitLog",
    "CommitResult",
    "DeadLetterQueue",
    "Decoded",
    "MaintenancePolicy",
    "MicroBatch",
    "RowDecoder",
    "SinkAudit",
    "SinkConfigError",
    "SinkConflict",
    "SinkError",
    "SinkTarget",
    "TableSink",
    "WorkerConfig",
    "applied_events",
    "audit",
    "column_from_connect",
    "column_from_value",
    "dlq_headers",
    "dlq_topic_for",
    "lag_samples",
    "latest_per_key",
    "read_commit_log",
    "read_dead_letters",
]
