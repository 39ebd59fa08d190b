"""Benchmark of binlog CDC on MySQL/MariaDB: how fast each approach catches up on a backlog.

Both approaches read the same kind of backlog from a real server's binary log — ``ops``
single-row transactions (inserts, updates, deletes of generated customers) committed while
the consumer was not reading:

* **the binlog reader** (cdc_support, mysql-replication): its position file is set to where
  the backlog starts, then it is started; timed until it has handed over every change.
* **Debezium** (MariaDB/MySQL connector in Kafka Connect): the connector streams, is STOPPED
  (Connect commits its offsets), the backlog is written, then it is resumed; timed until
  every change is in its Kafka topic (read back by a consumer, so Kafka is in the path).

Reported: events/s from the first to the last change delivered (the steady rate), and the
time from start/resume to the last change (including the reconnect). The writer's own rate
is shown for scale. Needs a running stack: ``python -m pytest_cdc.bench --only binlog``
starts one; with your own servers pass the DSNs and endpoints (see ``--help``).
Numbers depend on the machine; nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cdc_support.kafka.connect import ConnectClient
from cdc_support.kafka.connector_config import mysql_connector_config, topic_for
from cdc_support.kafka.topics import TopicReader
from cdc_support.mysql.binlog_reader import (
    BinlogPosition,
    BinlogReader,
    PositionStore,
    binlog_source,
)
from cdc_support.mysql.loader import create_table, mixed_workload
from cdc_support.mysql.source import MySqlAddress, binlog_position, connect, parse_dsn
from cdc_support.workload import EcommerceGenerator

__all__ = ["format_report", "run"]

TABLE = "customers"


def _write_backlog(admin: MySqlAddress, ops: int, seed: int) -> dict[str, Any]:
    with connect(admin) as conn:
        started = time.monotonic()
        log = mixed_workload(conn, EcommerceGenerator(seed), ops, table=TABLE)
        seconds = time.monotonic() - started
    return {"ops": len(log), "seconds": seconds, "ops_per_second": len(log) / seconds}


def _rates(count: int, started: float, first: float, last: float) -> dict[str, Any]:
    steady = last - first
    return {
        "events": count,
        "to_last_seconds": last - started,
        "steady_seconds": steady,
        "events_per_second": count / steady if steady > 0 else float("inf"),
    }


def _reader_catch_up(
    admin: MySqlAddress, cdc: MySqlAddress, database: str, ops: int, seed: int, timeout: float
) -> dict[str, Any]:
    with connect(admin) as conn:
        start = BinlogPosition(*binlog_position(conn))
    writer = _write_backlog(admin, ops, seed)
    with tempfile.TemporaryDirectory(prefix="binlog-bench-") as tmp:
        store = PositionStore(Path(tmp) / "position.json", binlog_source(cdc, database, [TABLE]))
        store.save(start)
        reader = BinlogReader(
            cdc,
            schema=database,
            tables=[TABLE],
            store=store,
            server_id=random.randint(10_000, 2**31 - 1),
        )
        started = time.time()
        reader.start()
        try:
            events = reader.wait_for(ops, timeout=timeout)
        finally:
            reader.stop()
    observed = [e.observed_ts or 0.0 for e in events]
    return {"writer": writer, **_rates(len(events), started, min(observed), max(observed))}


def _debezium_catch_up(
    admin: MySqlAddress,
    cdc: MySqlAddress,
    database: str,
    *,
    flavor: str,
    bootstrap: str,
    connect_url: str,
    ops: int,
    seed: int,
    timeout: float,
) -> dict[str, Any]:
    client = ConnectClient(connect_url)
    name = f"bench_{uuid.uuid4().hex[:8]}"
    config = mysql_connector_config(
        flavor=flavor,
        host=cdc.host,
        port=cdc.port,
        user=cdc.user,
        password=cdc.password,
        database=database,
        tables=[TABLE],
        topic_prefix=name,
        server_id=random.randint(10_000, 2**31 - 1),
        kafka_bootstrap=bootstrap,
        snapshot_mode="no_data",
    )
    client.create(name, config)
    reader = TopicReader(bootstrap, [topic_for(name, database, TABLE)])
    try:
        client.wait_running(name, timeout=timeout)
        client.wait_streaming(name, name, bootstrap, timeout=timeout)
        client.stop(name)
        client.wait_stopped(name, timeout=timeout)
        writer = _write_backlog(admin, ops, seed)
        started = time.time()
        client.resume(name)
        seen = reader.read_count(ops, timeout=timeout)
    finally:
        reader.close()
        client.delete(name)
        client.wait_gone(name)
    observed = [e.observed_ts or 0.0 for e in seen.events]
    return {"writer": writer, **_rates(len(seen.events), started, min(observed), max(observed))}


def run(
    *,
    admin_dsn: str,
    cdc_dsn: str,
    kafka_bootstrap: str,
    connect_url: str,
    flavor: str = "mariadb",
    ops: int = 5_000,
    seed: int = 42,
    timeout: float = 300.0,
) -> dict[str, Any]:
    """Measure both approaches on a backlog of ``ops`` changes each, in a throwaway database."""
    if ops < 1:
        raise ValueError(f"need ops >= 1, got {ops}")
    admin, cdc = parse_dsn(admin_dsn), parse_dsn(cdc_dsn)
    database = f"bench_binlog_{uuid.uuid4().hex[:8]}"
    with connect(admin) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{database}`")
    admin_db = admin.with_database(database)
    try:
        with connect(admin_db) as conn:
            create_table(conn, TABLE)
        reader = _reader_catch_up(admin_db, cdc, database, ops, seed, timeout)
        debezium = _debezium_catch_up(
            admin_db,
            cdc,
            database,
            flavor=flavor,
            bootstrap=kafka_bootstrap,
            connect_url=connect_url,
            ops=ops,
            seed=seed + 1,
            timeout=timeout,
        )
    finally:
        with connect(admin) as conn, conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{database}`")
    return {
        "parameters": {"ops": ops, "seed": seed, "flavor": flavor},
        "approaches": {"the binlog reader": reader, "Debezium": debezium},
    }


def format_report(result: dict[str, Any]) -> str:
    """The result of :func:`run` as a plain-text table."""
    p = result["parameters"]
    lines = [
        f"Binlog CDC catch-up on {p['flavor']} — a backlog of {p['ops']} single-row "
        "transactions (insert/update/delete) per approach",
        "",
        f"{'approach':<20}{'events':>8}{'events/s':>11}{'steady s':>10}{'to last s':>11}"
        f"{'writer ops/s':>14}",
    ]
    for name, r in result["approaches"].items():
        lines.append(
            f"{name:<20}{r['events']:>8}{r['events_per_second']:>11,.0f}"
            f"{r['steady_seconds']:>10.2f}{r['to_last_seconds']:>11.2f}"
            f"{r['writer']['ops_per_second']:>14,.0f}"
        )
    lines.append(
        "(events/s: first to last change delivered; 'to last': from start/resume, reconnect "
        "included; Debezium is timed into Kafka and back out)"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: run the benchmark against the given servers and print the table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--mysql-admin-dsn", required=True, help="mysql://root@host:port/")
    parser.add_argument("--mysql-cdc-dsn", required=True, help="the least-privilege CDC user")
    parser.add_argument("--kafka", required=True, help="Kafka bootstrap servers")
    parser.add_argument("--connect", required=True, help="Kafka Connect REST URL")
    parser.add_argument("--flavor", default="mariadb", choices=("mariadb", "mysql"))
    parser.add_argument("--ops", type=int, default=5_000, help="backlog size per approach")
    parser.add_argument("--seed", type=int, default=42, help="generator seed")
    args = parser.parse_args(argv)
    result = run(
        admin_dsn=args.mysql_admin_dsn,
        cdc_dsn=args.mysql_cdc_dsn,
        kafka_bootstrap=args.kafka,
        connect_url=args.connect,
        flavor=args.flavor,
        ops=args.ops,
        seed=args.seed,
    )
    print(format_report(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
