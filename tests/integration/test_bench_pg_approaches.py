"""The PostgreSQL approaches benchmark on the session's real stack, at a tiny size."""

from __future__ import annotations

import psycopg

from cdc_support.bench import pg_approaches
from pytest_cdc.bench import pg_stack_args


def test_every_approach_is_measured_and_nothing_is_left(cdc_stack, connect_client) -> None:
    args = pg_stack_args(cdc_stack)
    assert pg_approaches.main([*args, "--ops", "20", "--only", "logical-decoding"]) == 0
    ep = cdc_stack.endpoints
    user, password = ep.postgres_cdc_login  # Debezium as the replication role
    result = pg_approaches.run(
        postgres_dsn=ep.postgres_dsn,
        kafka_bootstrap=ep.kafka_bootstrap,
        connect_url=ep.connect_url,
        pg_host=ep.postgres_host,
        pg_port=ep.postgres_port,
        pg_user=user,
        pg_password=password,
        ops=30,
        interval=0.2,
    )
    rows = {r["approach"]: r for r in result["rows"]}
    assert set(rows) == {"none (baseline)", *pg_approaches.APPROACH_NAMES}
    for name in ("logical decoding", "Debezium", "trigger audit"):
        assert rows[name]["events delivered / committed"] == "30/30", rows[name]
        assert rows[name]["lag p95 s"] is not None and rows[name]["WAL bytes"] > 0
    assert rows["trigger audit"]["extra rows written"] == 30
    table = pg_approaches.format_report(result)
    assert "timestamp polling" in table and "WAL bytes" in table
    with psycopg.connect(ep.postgres_dsn) as conn:
        assert conn.execute(
            "SELECT count(*) FROM pg_database WHERE datname LIKE 'bench_pg_%'"
        ).fetchone() == (0,)
        assert conn.execute(
            "SELECT count(*) FROM pg_replication_slots WHERE database LIKE %s", ("bench_pg_%",)
        ).fetchone() == (0,)
    assert not [c for c in connect_client.connectors() if c.startswith("bench_pg_")]
