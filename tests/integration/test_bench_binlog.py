"""The binlog catch-up benchmark on the session's real stack, at a tiny size (it must work)."""

from __future__ import annotations

from cdc_support.bench import binlog
from cdc_support.mysql.source import connect, parse_dsn


def test_both_approaches_catch_up_on_the_whole_backlog(cdc_stack) -> None:
    ep = cdc_stack.endpoints
    result = binlog.run(
        admin_dsn=ep.mysql_dsn,
        cdc_dsn=ep.mysql_cdc_dsn,
        kafka_bootstrap=ep.kafka_bootstrap,
        connect_url=ep.connect_url,
        flavor=ep.mysql_flavor,
        ops=40,
        timeout=120,
    )
    approaches = result["approaches"]
    assert set(approaches) == {"the binlog reader", "Debezium"}
    for name, measured in approaches.items():
        assert measured["events"] == 40, (name, measured)
        assert measured["writer"]["ops"] == 40, (name, measured)
        assert measured["events_per_second"] > 0, (name, measured)
        assert measured["to_last_seconds"] >= measured["steady_seconds"], (name, measured)
    table = binlog.format_report(result)
    assert "the binlog reader" in table and "Debezium" in table


def test_the_benchmark_leaves_no_database_or_connector(cdc_stack, connect_client) -> None:
    ep = cdc_stack.endpoints
    binlog.run(
        admin_dsn=ep.mysql_dsn,
        cdc_dsn=ep.mysql_cdc_dsn,
        kafka_bootstrap=ep.kafka_bootstrap,
        connect_url=ep.connect_url,
        ops=5,
        timeout=120,
    )
    with connect(parse_dsn(ep.mysql_dsn)) as conn, conn.cursor() as cur:
        cur.execute("SHOW DATABASES LIKE 'bench_binlog_%'")
        assert cur.fetchall() == ()
    assert not [c for c in connect_client.connectors() if c.startswith("bench_")]
