"""Sink workers: Debezium topics applied to Delta Lake and Apache Iceberg tables, exactly once.

* :mod:`~cdc_support.sinks.columns` — Debezium fields (Kafka Connect schema, or inferred) as
  typed sink columns; :mod:`~cdc_support.sinks.values` — JSON values converted to them;
  :mod:`~cdc_support.sinks.format_types` — what Delta and Iceberg store each type as;
  :mod:`~cdc_support.sinks.resolve` — the column a record's value goes to;
* :mod:`~cdc_support.sinks.unavailable` — Debezium's placeholder for an unchanged TOAST value,
  and keeping the previous value instead;
* :mod:`~cdc_support.sinks.samples` — a table of every common PostgreSQL type, for features;
* :mod:`~cdc_support.sinks.decoding` — a record checked and decoded into a typed row;
* :mod:`~cdc_support.sinks.batching` — micro-batches with the latest event per key,
  tombstones, replays, offset ranges, split in halves; :mod:`~cdc_support.sinks.positions` —
  offsets per partition and their JSON;
* :mod:`~cdc_support.sinks.delta_sink` — MERGE per batch with a Delta app transaction per
  partition;
* :mod:`~cdc_support.sinks.iceberg_sink` — delete + append per batch with the offsets in the
  snapshot summary, snapshot expiry and compaction, one writer per table;
* :mod:`~cdc_support.sinks.dlq` — the dead-letter topic; :mod:`~cdc_support.sinks.dead_letters`
  — a worker's dead letters, counted and logged;
* :mod:`~cdc_support.sinks.screening` — values that do not fit the table, and telling a
  commit the table refused for its data from one that failed for another reason;
* :mod:`~cdc_support.sinks.preflight` — Kafka answers, the topic exists (before consuming);
* :mod:`~cdc_support.sinks.errors` — why a worker stops (config error, conflict, other);
* :mod:`~cdc_support.sinks.poison` and :mod:`~cdc_support.sinks.table_rules` — records a sink
  cannot apply and tables that refuse rows, for features;
* :mod:`~cdc_support.sinks.metrics` — Prometheus metrics of a worker;
* :mod:`~cdc_support.sinks.commit_log` — one JSON line per batch, and the exactly-once audit;
* :mod:`~cdc_support.sinks.applying` — one table commit per batch, halves down to a refused
  record, new columns, retries, maintenance;
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
from cdc_support.sinks.batching import MicroBatch, latest_per_key
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
from cdc_support.sinks.decoding import Decoded, RowDecoder
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
