"""Benchmark of the PostgreSQL CDC approaches: one seeded workload through each, measured.

The same workload — ``ops`` single-row transactions (inserts, updates, deletes of generated
customers) — runs once on a table nobody captures (the baseline) and once per approach, each
on a fresh database of its own, one at a time: logical decoding (Python pgoutput consumer),
Debezium (PostgreSQL connector in Kafka Connect, read back from Kafka), trigger audit and
timestamp polling (both polling every ``--interval`` seconds). Reported per approach: events
delivered vs changes committed, lag p50/p95/p99 (source commit → delivery), events/s (from the
workload's start to the last delivery), the writer's own rate, extra rows written on the
source and WAL bytes written during the workload (``pg_current_wal_lsn()`` deltas; the server
must be otherwise idle). Every database, slot, connector, trigger and audit table the run makes
is removed at its end. Needs a running stack: ``python -m pytest_cdc.bench --only
pg_approaches`` starts one; with your own servers pass the endpoints (see ``--help``).
Numbers depend on the machine; nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import uuid
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql

from cdc_support.postgres import (
    CaptureApproach,
    DebeziumApproach,
    DebeziumTarget,
    LogicalDecodingApproach,
    TimestampPollingApproach,
    TriggerAuditApproach,
)
from cdc_support.postgres.loader import create_schema
from cdc_support.postgres.measure import (
    ApproachOutcomes,
    WorkloadRun,
    comparison_rows,
    measure_approach,
    measure_baseline,
)

__all__ = ["format_report", "run"]

APPROACH_NAMES = ("logical decoding", "Debezium", "trigger audit", "timestamp polling")


def _make(
    name: str, dsn: str, database: str, target: DebeziumTarget | None, interval: float
) -> CaptureApproach:
    key = ("id",)
    if name == "logical decoding":
        return LogicalDecodingApproach(
            dsn, "customers", key, slot=database, publication=f"{database}_pub"
        )
    if name == "trigger audit":
        return TriggerAuditApproach(dsn, "customers", key, interval=interval)
    if name == "timestamp polling":
        return TimestampPollingApproach(dsn, "customers", key, interval=interval)
    if target is None:
        raise ValueError("Debezium needs --kafka and --connect")
    return DebeziumApproach(
        dsn, "customers", key, target=_for(target, database), connector=database
    )


def _for(target: DebeziumTarget, dbname: str) -> DebeziumTarget:
    return DebeziumTarget(
        target.connect_url,
        target.kafka_bootstrap,
        target.host,
        target.port,
        target.user,
        target.password,
        dbname,
    )


def _measure_one(
    admin_dsn: str,
    name: str | None,
    *,
    ops: int,
    seed: int,
    interval: float,
    target: DebeziumTarget | None,
    timeout: float,
) -> WorkloadRun:
    database = f"bench_pg_{uuid.uuid4().hex[:10]}"
    dsn = psycopg.conninfo.make_conninfo(admin_dsn, dbname=database)
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            create_schema(conn)
            if name is None:
                return measure_baseline(conn, operations=ops, seed=seed)
            approach = _make(name, dsn, database, target, interval)
            try:
                return measure_approach(approach, conn, operations=ops, seed=seed, timeout=timeout)
            finally:
                approach.close()
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            for (slot,) in admin.execute(
                "SELECT slot_name FROM pg_replication_slots WHERE database = %s", (database,)
            ).fetchall():
                admin.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
            )


def run(
    *,
    postgres_dsn: str,
    kafka_bootstrap: str | None = None,
    connect_url: str | None = None,
    pg_host: str | None = None,
    pg_port: int | None = None,
    pg_user: str | None = None,
    pg_password: str = "",
    approaches: Sequence[str] = APPROACH_NAMES,
    ops: int = 5_000,
    seed: int = 42,
    interval: float = 0.5,
    timeout: float = 300.0,
) -> dict[str, Any]:
    """Measure the baseline and each approach; returns the comparison rows and raw runs."""
    info = psycopg.conninfo.conninfo_to_dict(postgres_dsn)
    target = None
    if kafka_bootstrap and connect_url:
        target = DebeziumTarget(
            connect_url,
            kafka_bootstrap,
            pg_host or str(info.get("host", "127.0.0.1")),
            int(pg_port or info.get("port", 5432)),
            pg_user or str(info.get("user", "postgres")),
            pg_password or str(info.get("password", "")),
            "",
        )
    runs = [
        _measure_one(
            postgres_dsn,
            name,
            ops=ops,
            seed=seed,
            interval=interval,
            target=target,
            timeout=timeout,
        )
        for name in (None, *approaches)
    ]
    return {
        "ops": ops,
        "seed": seed,
        "poll_interval": interval,
        "rows": comparison_rows(runs, ApproachOutcomes()),
        "runs": [r.as_dict() for r in runs],
    }


def _fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def format_report(result: dict[str, Any]) -> str:
    """A plain-text table: one line per approach."""
    head = (
        f"PostgreSQL CDC approaches: {result['ops']} single-row transactions (seed "
        f"{result['seed']}), pollers every {result['poll_interval']} s\n"
    )
    cols = (
        f"{'approach':<18} {'delivered':>10} {'p50 s':>7} {'p95 s':>7} {'p99 s':>7} "
        f"{'events/s':>9} {'writer/s':>9} {'extra rows':>10} {'WAL bytes':>11}"
    )
    lines = [head, cols, "-" * len(cols)]
    for row in result["rows"]:
        lines.append(
            f"{row['approach']:<18} {row['events delivered / committed']:>10} "
            f"{_fmt(row['lag p50 s'], '.3f'):>7} {_fmt(row['lag p95 s'], '.3f'):>7} "
            f"{_fmt(row['lag p99 s'], '.3f'):>7} {_fmt(row['events/s'], '.0f'):>9} "
            f"{_fmt(row['writer ops/s'], '.0f'):>9} {row['extra rows written']:>10,} "
            f"{row['WAL bytes']:>11,}"
        )
    return "\n".join(lines) + "\n"


APPROACH_SLUGS = {n.lower().replace(" ", "-"): n for n in APPROACH_NAMES}
"""``--only`` values: each approach's name in lower case with dashes."""


def argument_parser() -> argparse.ArgumentParser:
    """The benchmark's command line: endpoints and sizes."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--postgres-dsn", required=True, help="postgresql://user@host:port/db")
    parser.add_argument("--kafka", help="Kafka bootstrap servers (for Debezium)")
    parser.add_argument("--connect", help="Kafka Connect REST URL (for Debezium)")
    parser.add_argument("--pg-host", help="PostgreSQL host as Connect reaches it (default: DSN's)")
    parser.add_argument("--pg-port", type=int, help="PostgreSQL port as Connect reaches it")
    parser.add_argument("--pg-user", help="user Debezium connects as (default: DSN's)")
    parser.add_argument("--pg-password", default="", help="its password")
    parser.add_argument("--only", nargs="+", choices=sorted(APPROACH_SLUGS), help="run only these")
    parser.add_argument("--ops", type=int, default=5_000, help="workload size per approach")
    parser.add_argument("--seed", type=int, default=42, help="generator seed")
    parser.add_argument("--interval", type=float, default=0.5, help="pollers' interval, s")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: endpoints, sizes; prints the table."""
    args = argument_parser().parse_args(argv)
    approaches = (
        [APPROACH_SLUGS[o] for o in args.only]
        if args.only
        else [n for n in APPROACH_NAMES if n != "Debezium" or (args.kafka and args.connect)]
    )
    result = run(
        postgres_dsn=args.postgres_dsn,
        kafka_bootstrap=args.kafka,
        connect_url=args.connect,
        pg_host=args.pg_host,
        pg_port=args.pg_port,
        pg_user=args.pg_user,
        pg_password=args.pg_password,
        approaches=approaches,
        ops=args.ops,
        seed=args.seed,
        interval=args.interval,
    )
    print(format_report(result), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
