"""Per-scenario PostgreSQL databases and replication slots that are always cleaned up."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
from psycopg import sql

from cdc_support.naming import MAX_IDENTIFIER, scenario_name
from cdc_support.waiting import WaitTimeout, wait_until

__all__ = [
    "MAX_IDENTIFIER",
    "PgDatabase",
    "drop_database_slots",
    "drop_slot",
    "scenario_database",
    "scenario_name",
]


@dataclass(frozen=True)
class PgDatabase:
    """A database created for one scenario: the admin's DSN (it owns what it creates there)
    and ``cdc_dsn``, the replication role's (what CDC clients connect as)."""

    name: str
    dsn: str
    cdc_dsn: str = ""

    @property
    def replication_dsn(self) -> str:
        """The replication role's DSN, or the admin's when the stack has no such role."""
        return self.cdc_dsn or self.dsn

    def __repr__(self) -> str:
        return f"PgDatabase({self.name})"


def _with_dbname(dsn: str, dbname: str) -> str:
    return psycopg.conninfo.make_conninfo(dsn, dbname=dbname)


@contextmanager
def scenario_database(admin_dsn: str, name: str, *, cdc_dsn: str = "") -> Iterator[PgDatabase]:
    """Create database `name`; on exit drop its replication slots and the database itself.

    ``cdc_dsn`` is the replication role's DSN on the server (any database).
    """
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield PgDatabase(
            name=name,
            dsn=_with_dbname(admin_dsn, name),
            cdc_dsn=_with_dbname(cdc_dsn, name) if cdc_dsn else "",
        )
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            drop_database_slots(admin, name)
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def drop_database_slots(admin: psycopg.Connection, database: str, timeout: float = 15.0) -> None:
    """Drop every replication slot of `database`, ending the walsenders still holding them."""
    rows = admin.execute(
        "SELECT slot_name FROM pg_replication_slots WHERE database = %s", (database,)
    ).fetchall()
    for (slot,) in rows:
        drop_slot(admin, slot, timeout=timeout)


def drop_slot(admin: psycopg.Connection, slot: str, timeout: float = 15.0) -> bool:
    """Drop one slot; a slot still active is released by ending its walsender first.

    Returns False when the slot did not exist. Polls with a deadline: a connector that was
    just deleted releases its slot a moment later; if it has not after `timeout`, its
    walsender is terminated and the slot is awaited once more.
    """

    def holder() -> tuple[bool, int | None]:
        row = admin.execute(
            "SELECT active_pid FROM pg_replication_slots WHERE slot_name = %s", (slot,)
        ).fetchone()
        return (False, None) if row is None else (True, row[0])

    def wait_released() -> tuple[bool, int | None]:
        return wait_until(
            holder,
            done=lambda state: not state[0] or state[1] is None,
            timeout=timeout,
            interval=0.1,
            expected=f"replication slot {slot} released by its walsender",
            describe=lambda state: f"slot held by backend pid {state[1]}",
        )

    try:
        exists, _ = wait_released()
    except WaitTimeout:
        admin.execute(
            "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots "
            "WHERE slot_name = %s AND active_pid IS NOT NULL",
            (slot,),
        )
        exists, _ = wait_released()
    if not exists:
        return False
    admin.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
    return True
