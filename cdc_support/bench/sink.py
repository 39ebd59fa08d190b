"""Benchmark of the sink workers: events/s into Delta and Iceberg vs just reading the topic.

One topic is filled with Debezium-shaped change records of the generated ``customers``
table (``initial_rows`` snapshot reads, then ``events`` inserts/updates/deletes with a
tombstone after each delete; values carry their Kafka Connect schema, as in the features).
Then, in the same run, on the same topic, each from offset 0:

* **raw consume** — a consumer reads every record and does nothing with it: the ceiling;
* **consume + decode** — records parsed into typed rows and micro-batched, nothing written;
* **delta** and **iceberg** — the sink worker (in this process, the code ``cdc-spec sink``
  runs) applies the topic to a new table until it has committed the last record;
* **iceberg, no maintenance** — the same without snapshot expiry and compaction, to show
  what the maintenance policy saves (full runs only).

Reported: change events/s (tombstones are read but not counted), commits, and the commit
latency trend (median of the first and last commits, p95, slope). Every sink table is
checked against the expected rows. Needs a Kafka broker: ``python -m pytest_cdc.bench
--only sink`` starts one; or pass ``--kafka host:port``. Nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient

from cdc_support.checks.integrity import compare_tables
from cdc_support.events import Tombstone
from cdc_support.sinks.base import MaintenancePolicy
from cdc_support.sinks.batching import MicroBatch
from cdc_support.sinks.commit_log import commit_latencies, read_commit_log
from cdc_support.sinks.config import SinkTarget, WorkerConfig
from cdc_support.sinks.decoding import RowDecoder
from cdc_support.sinks.dlq import dlq_topic_for, ensure_topic
from cdc_support.sinks.envelopes import customer_changes, produce
from cdc_support.sinks.trend import latency_trend
from cdc_support.sinks.worker import SinkWorker
from cdc_support.workload import NORMALIZERS

__all__ = ["format_report", "run"]

NO_MAINTENANCE = MaintenancePolicy(expire_every=0, keep_snapshots=0, compact_files=0)


def _consumer(bootstrap: str) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-sink-raw-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 100,
        }
    )


def _read_all(bootstrap: str, topic: str, total: int, decode: bool, timeout: float) -> dict:
    consumer = _consumer(bootstrap)
    consumer.subscribe([topic])
    decoder = RowDecoder(("id",)) if decode else None
    batch = MicroBatch(1)
    records = events = 0
    first = last = None
    deadline = time.monotonic() + timeout
    try:
        while records < total:
            if time.monotonic() > deadline:
                raise TimeoutError(f"read {records} of {total} records of {topic} in {timeout}s")
            for msg in consumer.consume(num_messages=1000, timeout=0.5):
                if msg.error() is not None:
                    continue
                first = first or time.perf_counter()
                records += 1
                if decoder is not None:
                    item = decoder.decode(msg)
                    if isinstance(item, Tombstone):
                        batch.add_tombstone(topic, msg.partition(), msg.offset())
                        continue
                    batch.add_change(topic, msg.partition(), msg.offset(), item)
                    if batch.records >= 2000:
                        batch.upserts()
                        batch = MicroBatch(batch.number + 1)
                if msg.value() is not None:
                    events += 1
            last = time.perf_counter()
    finally:
        consumer.close()
    seconds = (last or 0) - (first or 0)
    return {
        "events": events,
        "records": records,
        "seconds": seconds,
        "events_per_second": events / seconds if seconds > 0 else float("inf"),
        "commits": None,
    }


def _sink(
    bootstrap: str,
    topic: str,
    target: SinkTarget,
    workdir: Path,
    total: int,
    expected: dict,
    batch_size: int,
    policy: MaintenancePolicy,
    timeout: float,
) -> dict[str, Any]:
    log_path = workdir / f"{target.format}-{uuid.uuid4().hex[:6]}.jsonl"
    config = WorkerConfig(
        bootstrap=bootstrap,
        topic=topic,
        group=f"bench-sink-{uuid.uuid4().hex[:8]}",
        target=target,
        batch_size=batch_size,
        batch_ms=500,
        commit_log=str(log_path),
        policy=policy,
    )
    worker = SinkWorker(config)
    end = {(topic, 0): total}
    deadline = time.monotonic() + timeout
    started = time.perf_counter()
    worker.run(until=lambda w: w.positions_reached(end) or time.monotonic() > deadline)
    seconds = time.perf_counter() - started
    if not worker.positions_reached(end):
        raise TimeoutError(f"{target.format} sink did not reach offset {total} in {timeout}s")
    entries = read_commit_log(log_path)
    commits = [e for e in entries if e.get("kind") == "commit"]
    events = sum(len(e.get("events") or []) for e in commits)
    # steady: from the first record consumed (start of the first commit's batch) to the
    # moment the last commit became visible, without process start and table creation
    first_start = min((e["opened_at"] for e in commits), default=0.0)
    steady = max((e["visible_at"] for e in commits), default=0.0) - first_start
    sink = target.open(policy=policy)
    try:
        rows = sink.read_rows()
        snapshots = len(sink.history(10_000))
    finally:
        sink.close()
    report = compare_tables(expected, rows, normalizers=NORMALIZERS)
    return {
        "events": events,
        "seconds": seconds,
        "steady_seconds": steady,
        "events_per_second": events / seconds if seconds > 0 else float("inf"),
        "steady_events_per_second": events / steady if steady > 0 else float("inf"),
        "commits": len(commits),
        "maintenance": sum(1 for e in entries if e.get("kind") == "maintenance"),
        "history_entries": snapshots,
        "latency": latency_trend(commit_latencies(entries)),
        "integrity": report.summary().splitlines()[0],
        "integrity_ok": report.ok,
    }


def run(
    *,
    kafka_bootstrap: str,
    events: int = 50_000,
    initial_rows: int = 2_000,
    batch_size: int = 1_000,
    seed: int = 42,
    compare_no_maintenance: bool = True,
    timeout: float = 600.0,
    workdir: str | Path | None = None,
) -> dict[str, Any]:
    """Fill a topic, then measure raw consume, decode, and each sink on it; return a dict."""
    if events < 1 or initial_rows < 0 or batch_size < 1:
        raise ValueError(
            f"need events >= 1, initial_rows >= 0, batch_size >= 1; got {events=} "
            f"{initial_rows=} {batch_size=}"
        )
    logging.getLogger("cdc_support.sinks").setLevel(logging.WARNING)
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    topic = f"bench_sink_{uuid.uuid4().hex[:8]}"
    ensure_topic(admin, topic)
    changes = customer_changes(events, seed=seed, initial_rows=initial_rows)
    started = time.perf_counter()
    total = produce(kafka_bootstrap, topic, changes.records)
    produced = time.perf_counter() - started
    results: dict[str, Any] = {}
    try:
        results["raw consume"] = _read_all(kafka_bootstrap, topic, total, False, timeout)
        results["consume + decode"] = _read_all(kafka_bootstrap, topic, total, True, timeout)
        with tempfile.TemporaryDirectory(prefix="sink-bench-", dir=workdir) as tmp:
            base = Path(tmp)
            variants: list[tuple[str, SinkTarget, MaintenancePolicy]] = [
                (
                    "delta",
                    SinkTarget("delta", ("id",), table_uri=str(base / "delta")),
                    MaintenancePolicy(),
                ),
                (
                    "iceberg",
                    SinkTarget("iceberg", ("id",), warehouse=str(base / "wh"), table="b.c"),
                    MaintenancePolicy(),
                ),
            ]
            if compare_no_maintenance:
                variants.append(
                    (
                        "iceberg, no maintenance",
                        SinkTarget("iceberg", ("id",), warehouse=str(base / "wh2"), table="b.c"),
                        NO_MAINTENANCE,
                    )
                )
            for name, target, policy in variants:
                results[name] = _sink(
                    kafka_bootstrap,
                    topic,
                    target,
                    base,
                    total,
                    changes.rows,
                    batch_size,
                    policy,
                    timeout,
                )
    finally:
        admin.delete_topics([topic, dlq_topic_for(topic)])
    return {
        "parameters": {
            "events": changes.change_events,
            "initial_rows": initial_rows,
            "records": total,
            "batch_size": batch_size,
            "seed": seed,
            "final_rows": len(changes.rows),
        },
        "producer": {"seconds": produced, "records_per_second": total / produced},
        "results": results,
    }


def format_report(result: dict[str, Any]) -> str:
    """The result of :func:`run` as a plain-text table."""
    p = result["parameters"]
    lines = [
        f"Sink workers — one topic of {p['events']:,} change events ({p['initial_rows']:,} "
        f"snapshot reads, the rest inserts/updates/deletes; {p['records']:,} records with "
        f"tombstones), batches of up to {p['batch_size']:,}; the table ends with "
        f"{p['final_rows']:,} rows",
        "",
        f"{'variant':<26}{'events/s':>10}{'steady/s':>10}{'seconds':>9}{'commits':>9}"
        f"{'lat first':>11}{'lat last':>10}{'lat p95':>9}{'ms/commit':>11}  integrity",
    ]
    for name, r in result["results"].items():
        if r.get("commits") is None:
            lines.append(
                f"{name:<26}{r['events_per_second']:>10,.0f}{'':>10}{r['seconds']:>9.2f}"
                f"{'-':>9}{'-':>11}{'-':>10}{'-':>9}{'-':>11}  -"
            )
            continue
        lat = r["latency"]
        lines.append(
            f"{name:<26}{r['events_per_second']:>10,.0f}{r['steady_events_per_second']:>10,.0f}"
            f"{r['seconds']:>9.2f}{r['commits']:>9}{lat['median_first']:>11.3f}"
            f"{lat['median_last']:>10.3f}{lat['p95']:>9.3f}{lat['slope_ms_per_commit']:>11.2f}"
            f"  {'OK' if r['integrity_ok'] else 'MISMATCH: ' + r['integrity']}"
        )
    lines += [
        "",
        "events/s: change events over the whole run (sinks: from worker start to the last "
        "commit, table creation included); steady/s: from the first batch's first record to "
        "the last commit; lat first/last: median commit latency (s) of the first and last 5 "
        "commits; ms/commit: least-squares slope of commit latency.",
        f"(producing the topic: {result['producer']['records_per_second']:,.0f} records/s)",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: run the benchmark against a Kafka broker and print the table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--kafka", required=True, help="Kafka bootstrap servers (host:port)")
    parser.add_argument(
        "--events", type=int, default=50_000, help="change events after the snapshot"
    )
    parser.add_argument("--initial-rows", type=int, default=2_000, help="snapshot reads first")
    parser.add_argument("--batch-size", type=int, default=1_000, help="records per batch")
    parser.add_argument("--seed", type=int, default=42, help="generator seed")
    parser.add_argument(
        "--no-compare", action="store_true", help="skip the Iceberg run without maintenance"
    )
    args = parser.parse_args(argv)
    result = run(
        kafka_bootstrap=args.kafka,
        events=args.events,
        initial_rows=args.initial_rows,
        batch_size=args.batch_size,
        seed=args.seed,
        compare_no_maintenance=not args.no_compare,
    )
    print(format_report(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
