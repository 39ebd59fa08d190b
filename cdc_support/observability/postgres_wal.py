"""PostgreSQL for the collector: the WAL each replication slot holds back, and the WAL position.

One query per scrape, with the current WAL position taken once so every slot is measured
against the same point::

    cdc_pg_slot_retained_wal_bytes{slot, database, plugin, active}  current - restart_lsn
    cdc_pg_slot_confirmed_lag_bytes{slot, database}   current - confirmed_flush_lsn
    cdc_pg_slot_active{slot, database}                1 while a client streams from it
    cdc_pg_wal_position_bytes                          current, as a number

``restart_lsn`` is the oldest WAL the server must keep for the slot (what a stopped consumer
costs in disk); ``confirmed_flush_lsn`` is what the consumer acknowledged. A physical slot has
no database, plugin or confirmed position: those labels are empty and its lag is left out.
"""

from __future__ import annotations

import math
from typing import Any

import psycopg
from prometheus_client.core import GaugeMetricFamily, Metric
from psycopg.conninfo import conninfo_to_dict

__all__ = ["PostgresWal"]

QUERY = """
WITH now AS (SELECT pg_current_wal_lsn() AS lsn)
SELECT s.slot_name, coalesce(s.database, ''), coalesce(s.plugin, ''), s.active,
       pg_wal_lsn_diff(now.lsn, s.restart_lsn)::float8,
       pg_wal_lsn_diff(now.lsn, s.confirmed_flush_lsn)::float8,
       pg_wal_lsn_diff(now.lsn, '0/0')::float8
FROM now LEFT JOIN pg_replication_slots s ON true
ORDER BY s.slot_name
"""


class PostgresWal:
    """Reads the slots over one connection kept between scrapes (reopened after a failure)."""

    name = "postgres"

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        info = conninfo_to_dict(dsn)  # ProgrammingError for a DSN libpq cannot read
        self.where = (
            f"{info.get('host', 'localhost')}:{info.get('port', 5432)}/{info.get('dbname', '')}"
        )
        self._conn: psycopg.Connection[Any] | None = None

    def __repr__(self) -> str:
        return f"PostgresWal({self.where})"

    def _connect(self, timeout: float) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            conn = psycopg.connect(
                self.dsn,
                autocommit=True,
                connect_timeout=max(2, math.ceil(timeout)),  # libpq's minimum is 2 s
                application_name="cdc-spec collector",
            )
            ms = str(max(1, int(timeout * 1000)))
            conn.execute("SELECT set_config('statement_timeout', %s, false)", (ms,))
            self._conn = conn
        return self._conn

    def read(self, timeout: float) -> list[Metric]:
        """The families above; raises (and drops the connection) when PostgreSQL fails."""
        try:
            rows = self._connect(timeout).execute(QUERY).fetchall()
        except Exception:
            self.close()
            raise
        return families(rows)

    def close(self) -> None:
        """Close the connection (the next read opens a new one)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


def families(rows: list[tuple[Any, ...]]) -> list[Metric]:
    """Metric families from :data:`QUERY`'s rows (one row with no slot when there is none)."""
    retained = GaugeMetricFamily(
        "cdc_pg_slot_retained_wal_bytes",
        "WAL the server keeps for the slot: current WAL position - restart_lsn",
        labels=["slot", "database", "plugin", "active"],
    )
    confirmed = GaugeMetricFamily(
        "cdc_pg_slot_confirmed_lag_bytes",
        "WAL the slot's consumer has not confirmed: current WAL position - confirmed_flush_lsn",
        labels=["slot", "database"],
    )
    active = GaugeMetricFamily(
        "cdc_pg_slot_active", "1 while a client streams from the slot", labels=["slot", "database"]
    )
    position = GaugeMetricFamily(
        "cdc_pg_wal_position_bytes", "pg_current_wal_lsn() as a number of bytes"
    )
    if rows:
        position.add_metric([], rows[0][-1])
    for slot, database, plugin, is_active, restart, confirm, _current in rows:
        if slot is None:
            continue
        if restart is not None:
            retained.add_metric([slot, database, plugin, "true" if is_active else "false"], restart)
        if confirm is not None:
            confirmed.add_metric([slot, database], confirm)
        active.add_metric([slot, database], 1.0 if is_active else 0.0)
    return [retained, confirmed, active, position]
