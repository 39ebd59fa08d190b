"""Who reads the binlog, and with which rights (MySQL/MariaDB server introspection)."""

from __future__ import annotations

from typing import Any

import pymysql

__all__ = ["binlog_clients", "grants_for"]


def binlog_clients(conn: pymysql.Connection) -> list[dict[str, Any]]:
    """The connections streaming the binlog: PROCESSLIST rows with a "Binlog Dump" command."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT USER, HOST, COMMAND, STATE FROM information_schema.PROCESSLIST "
            "WHERE COMMAND LIKE 'Binlog Dump%'"
        )
        return [dict(zip(("user", "host", "command", "state"), r, strict=True)) for r in cur]


def grants_for(conn: pymysql.Connection, user: str, host: str = "127.0.0.1") -> list[str]:
    """``SHOW GRANTS`` for ``user@host``, without the password hash."""
    with conn.cursor() as cur:
        cur.execute(f"SHOW GRANTS FOR '{user}'@'{host}'")
        return [r[0].split(" IDENTIFIED BY")[0] for r in cur]
