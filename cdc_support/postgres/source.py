"""Small catalog helpers the approaches share: keys, REPLICA IDENTITY, slots, WAL position."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql

from cdc_support.waiting import WaitTimeout, wait_until

__all__ = [
    "drop_slot",
    "missing_tables",
    "primary_key",
    "replica_identity",
    "set_replica_identity",
    "slot_state",
    "split_table",
    "wait_slot_released",
]

_IDENTITY = {"d": "DEFAULT", "f": "FULL", "n": "NOTHING", "i": "INDEX"}


def split_table(table: str) -> tuple[str, str]:
    """``schema.table`` or ``table`` -> (schema, table); the schema defaults to public."""
    schema, _, name = table.rpartition(".")
    return schema or "public", name


def _ident(table: str) -> sql.Composed:
    schema, name = split_table(table)
    return sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(name))


def primary_key(conn: psycopg.Connection[Any], table: str) -> tuple[str, ...]:
    """The table's primary key columns in key order; ValueError naming the fix if none."""
    schema, name = split_table(table)
    rows = conn.execute(
        "SELECT a.attname FROM pg_index i "
        "JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
        "WHERE n.nspname = %s AND c.relname = %s AND i.indisprimary "
        "ORDER BY array_position(i.indkey::int2[], a.attnum)",
        (schema, name),
    ).fetchall()
    if not rows:
        raise ValueError(f"{schema}.{name} has no primary key: a change event needs a key")
    return tuple(r[0] for r in rows)


def missing_tables(conn: psycopg.Connection[Any], tables: Sequence[str]) -> list[str]:
    """The tables (``schema.table`` or ``table``) that do not exist in ``conn``'s database.

    Read from the catalog, so any role can ask, whatever it may select.
    """
    missing = []
    for table in tables:
        schema, name = split_table(table)
        row = conn.execute(
            "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r', 'p')",
            (schema, name),
        ).fetchone()
        if row is None:
            missing.append(f"{schema}.{name}")
    return missing


def replica_identity(conn: psycopg.Connection[Any], table: str) -> str:
    """DEFAULT, FULL, NOTHING or INDEX."""
    schema, name = split_table(table)
    row = conn.execute(
        "SELECT c.relreplident FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = %s",
        (schema, name),
    ).fetchone()
    if row is None:
        raise ValueError(f"no table {schema}.{name}")
    return _IDENTITY[row[0]]


def set_replica_identity(conn: psycopg.Connection[Any], table: str, identity: str) -> str:
    """Set DEFAULT or FULL (committed); returns the previous setting."""
    if identity not in ("DEFAULT", "FULL"):
        raise ValueError(f"replica identity must be DEFAULT or FULL, not {identity!r}")
    previous = replica_identity(conn, table)
    if previous != identity:
        conn.execute(
            sql.SQL("ALTER TABLE {} REPLICA IDENTITY {}").format(_ident(table), sql.SQL(identity))
        )
        if not conn.autocommit:
            conn.commit()
    return previous


def slot_state(conn: psycopg.Connection[Any], slot: str) -> dict[str, Any] | None:
    """The slot's row in pg_replication_slots (active, active_pid, confirmed_flush_lsn, ...)."""
    cur = conn.execute(
        "SELECT slot_name, plugin, database, active, active_pid, restart_lsn::text, "
        "confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = %s",
        (slot,),
    )
    row = cur.fetchone()
    if row is None:
        return None
    names = [d.name for d in cur.description or []]
    return dict(zip(names, row, strict=True))


def wait_slot_released(conn: psycopg.Connection[Any], slot: str, timeout: float) -> None:
    """Poll until no walsender holds the slot (one consumer per slot)."""
    wait_until(
        lambda: slot_state(conn, slot),
        done=lambda state: state is None or not state["active"],
        timeout=timeout,
        interval=0.05,
        expected=f"replication slot {slot} released by its previous consumer",
        describe=lambda state: f"slot held by backend pid {(state or {}).get('active_pid')}",
    )


def drop_slot(conn: psycopg.Connection[Any], slot: str, timeout: float = 10.0) -> bool:
    """Drop the slot once released (ending a walsender still holding it after ``timeout``).

    Returns False when the slot did not exist.
    """
    try:
        wait_slot_released(conn, slot, timeout)
    except WaitTimeout:
        conn.execute(
            "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots "
            "WHERE slot_name = %s AND active_pid IS NOT NULL",
            (slot,),
        )
        wait_slot_released(conn, slot, timeout)
    if slot_state(conn, slot) is None:
        return False
    conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
    return True


def qualified(table: str) -> sql.Composed:
    """A (possibly schema-qualified) table name as a safely quoted SQL identifier."""
    return _ident(table)
