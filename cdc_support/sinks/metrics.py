"""Prometheus metrics of one sink worker, on a registry of its own, served over HTTP.

==========================================  =========  ==========================================
metric                                      type       what
==========================================  =========  ==========================================
``cdc_sink_events_consumed_total``          counter    change events read (no tombstones)
``cdc_sink_events_applied_total``           counter    change events in committed batches
``cdc_sink_tombstones_total``               counter    tombstones read and skipped
``cdc_sink_keyless_tombstones_total``       counter    of those, tombstones without a key either
``cdc_sink_replayed_skipped_total``         counter    records the table had applied already
``cdc_sink_rows_upserted_total``            counter    rows written (latest event per key)
``cdc_sink_rows_deleted_total``             counter    keys deleted
``cdc_sink_batches_committed_total``        counter    table commits
``cdc_sink_batches_skipped_total``          counter    batches recognised as replays
``cdc_sink_unavailable_events_total``       counter    committed events with a value Debezium
                                                       marked unavailable (unchanged TOAST),
                                                       kept from the earlier row
``cdc_sink_dead_letters_total{reason}``     counter    records sent to the dead-letter topic:
                                                       malformed, bad_value, table_refused
``cdc_sink_errors_total{stage}``            counter    errors: consume, commit, commit_conflict,
                                                       commit_refused, kafka_commit,
                                                       consumer_renewed, dead_letter,
                                                       maintenance
``cdc_sink_commit_latency_seconds``         histogram  time of one table commit
``cdc_sink_end_to_end_lag_seconds``         histogram  source commit -> visible in the table
``cdc_sink_maintenance_seconds{kind}``      histogram  snapshot expiry, compaction, optimize
``cdc_sink_last_commit_timestamp_seconds``  gauge      when the last commit became visible
``cdc_sink_assigned_partitions``            gauge      Kafka partitions this worker holds
==========================================  =========  ==========================================

The labelled counters start at 0 for every value above (``DEAD_LETTER_REASONS``,
``ERROR_STAGES``), so their series exist before the first event and a dashboard or an
``increase()`` sees the first one.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.parser import text_string_to_metric_families

__all__ = ["DEAD_LETTER_REASONS", "ERROR_STAGES", "SinkMetrics", "parse_metrics"]

DEAD_LETTER_REASONS = ("malformed", "bad_value", "table_refused")
"""Values of ``cdc_sink_dead_letters_total{reason}``."""
ERROR_STAGES = (
    "consume",
    "commit",
    "commit_conflict",
    "commit_refused",
    "kafka_commit",
    "consumer_renewed",
    "dead_letter",
    "maintenance",
)
"""Values of ``cdc_sink_errors_total{stage}``."""

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
LAG_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0, 300.0)


class SinkMetrics:
    """The worker's counters, histograms and gauges (a fresh registry per instance)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.events = Counter(
            "cdc_sink_events_consumed", "Change events read from Kafka", registry=r
        )
        self.applied = Counter(
            "cdc_sink_events_applied", "Change events in batches committed to the table", registry=r
        )
        self.tombstones = Counter(
            "cdc_sink_tombstones", "Tombstones read and skipped (no change)", registry=r
        )
        self.keyless_tombstones = Counter(
            "cdc_sink_keyless_tombstones",
            "Tombstones without a key (a table without a primary key), skipped",
            registry=r,
        )
        self.replayed = Counter(
            "cdc_sink_replayed_skipped",
            "Records below the position the table recorded (replays), skipped",
            registry=r,
        )
        self.upserted = Counter("cdc_sink_rows_upserted", "Rows inserted or updated", registry=r)
        self.unavailable = Counter(
            "cdc_sink_unavailable_events",
            "Committed change events with a value Debezium marked unavailable (kept, not written)",
            registry=r,
        )
        self.deleted = Counter("cdc_sink_rows_deleted", "Rows deleted", registry=r)
        self.batches = Counter("cdc_sink_batches_committed", "Table commits", registry=r)
        self.batches_skipped = Counter(
            "cdc_sink_batches_skipped", "Batches the table had applied already", registry=r
        )
        self.dead_letters = Counter(
            "cdc_sink_dead_letters",
            "Records sent to the dead-letter topic",
            ["reason"],
            registry=r,
        )
        self.errors = Counter("cdc_sink_errors", "Errors by stage", ["stage"], registry=r)
        for reason in DEAD_LETTER_REASONS:
            self.dead_letters.labels(reason=reason)
        for stage in ERROR_STAGES:
            self.errors.labels(stage=stage)
        self.commit_latency = Histogram(
            "cdc_sink_commit_latency_seconds",
            "Duration of one table commit",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.lag = Histogram(
            "cdc_sink_end_to_end_lag_seconds",
            "Source commit time to the table commit that made the change visible",
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.maintenance = Histogram(
            "cdc_sink_maintenance_seconds",
            "Duration of table maintenance",
            ["kind"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.last_commit = Gauge(
            "cdc_sink_last_commit_timestamp_seconds",
            "Epoch time the last table commit became visible",
            registry=r,
        )
        self.assigned = Gauge(
            "cdc_sink_assigned_partitions", "Kafka partitions assigned to this worker", registry=r
        )

    def serve(self, port: int, host: str = "127.0.0.1") -> Any:
        """Serve ``/metrics`` on ``host:port`` from a daemon thread; returns the server."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return server


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text -> ``{"name{label="v"}": value}`` of every sample (for checks)."""
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            name = f"{sample.name}{{{labels}}}" if labels else sample.name
            samples[name] = sample.value
    return samples
