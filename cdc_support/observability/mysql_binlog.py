"""MySQL/MariaDB for the collector: where the binary log is written, and how much of it there is.

::

    cdc_mysql_binlog_file_number       the current binlog file's number (mariadb-bin.000042 -> 42)
    cdc_mysql_binlog_position_bytes    the position in it (SHOW MASTER STATUS)
    cdc_mysql_binlog_total_bytes       the size of every binlog file kept (SHOW BINARY LOGS)

A binlog reader's position compared with these tells how far behind it is; the total is what
the server keeps on disk (until ``expire_logs_days`` / ``PURGE BINARY LOGS``). The account
needs REPLICATION CLIENT (BINLOG MONITOR on MariaDB).
"""

from __future__ import annotations

import contextlib

from prometheus_client.core import GaugeMetricFamily, Metric
from pymysql.connections import Connection

from cdc_support.mysql.source import binlog_position, parse_dsn

__all__ = ["MySqlBinlog", "binlog_file_number"]


def binlog_file_number(name: str) -> int:
    """The number a binlog file name ends with (``mariadb-bin.000042`` -> 42)."""
    _base, dot, number = name.rpartition(".")
    if not dot or not number.isdigit():
        raise ValueError(f"not a binlog file name (base.NNNNNN): {name!r}")
    return int(number)


class MySqlBinlog:
    """Reads the binlog position over one connection kept between scrapes (reopened after a
    failure)."""

    name = "mysql"

    def __init__(self, dsn: str) -> None:
        self.address = parse_dsn(dsn)  # ValueError naming the expected form
        self.where = repr(self.address)
        self._conn: Connection | None = None

    def __repr__(self) -> str:
        return f"MySqlBinlog({self.address!r})"

    def _connect(self, timeout: float) -> Connection:
        if self._conn is None or not self._conn.open:
            self._conn = Connection(
                **self.address.connect_kwargs(),
                autocommit=True,
                connect_timeout=timeout,
                read_timeout=timeout,
                write_timeout=timeout,
            )
        return self._conn

    def read(self, timeout: float) -> list[Metric]:
        """The families above; raises (and drops the connection) when the server fails."""
        try:
            conn = self._connect(timeout)
            file, position = binlog_position(conn)
            with conn.cursor() as cur:
                cur.execute("SHOW BINARY LOGS")
                total = sum(int(row[1]) for row in cur.fetchall())
        except Exception:
            self.close()
            raise
        return [
            GaugeMetricFamily(
                "cdc_mysql_binlog_file_number",
                "Number of the binlog file being written",
                value=binlog_file_number(file),
            ),
            GaugeMetricFamily(
                "cdc_mysql_binlog_position_bytes",
                "Position in the binlog file being written (SHOW MASTER STATUS)",
                value=position,
            ),
            GaugeMetricFamily(
                "cdc_mysql_binlog_total_bytes",
                "Size of all binlog files the server keeps (SHOW BINARY LOGS)",
                value=total,
            ),
        ]

    def close(self) -> None:
        """Close the connection (the next read opens a new one)."""
        conn, self._conn = self._conn, None
        if conn is not None and conn.open:
            with contextlib.suppress(Exception):  # a broken socket cannot say goodbye
                conn.close()
