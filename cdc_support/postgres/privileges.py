"""What a CDC client's PostgreSQL role needs, granted by the admin — and checks that it has no more.

A replication client (Debezium, the logical decoding consumer) connects as a role with LOGIN
and REPLICATION: enough to create a logical replication slot and stream from it. The admin
(the tables' owner) prepares the rest per capture:

* a publication ``FOR TABLE ...`` (creating one needs ownership of the tables, so Debezium runs
  with ``publication.autocreate.mode=disabled`` and uses it as it is);
* ``USAGE`` on each table's schema and ``SELECT`` on each table, for Debezium's snapshot;
* with a signal table (incremental snapshots), that table in the publication too, and
  ``INSERT`` on it for the connector's window marks.

:func:`role_attributes`, :func:`replication_client` and :func:`write_attempts` show what a
role is and may do, for the features that check it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql

from cdc_support.postgres.source import primary_key, qualified, split_table

__all__ = [
    "create_publication",
    "drop_publication",
    "grant_capture",
    "grant_signal_writes",
    "replication_client",
    "revoke_capture",
    "revoke_signal_writes",
    "role_attributes",
    "table_privileges",
    "write_attempts",
]

PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE")


def create_publication(conn: psycopg.Connection[Any], name: str, tables: Sequence[str]) -> bool:
    """``CREATE PUBLICATION name FOR TABLE ...`` unless it exists; True when created here."""
    if conn.execute("SELECT 1 FROM pg_publication WHERE pubname = %s", (name,)).fetchone():
        return False
    conn.execute(
        sql.SQL("CREATE PUBLICATION {} FOR TABLE {}").format(
            sql.Identifier(name), sql.SQL(", ").join(qualified(t) for t in tables)
        )
    )
    return True


def drop_publication(conn: psycopg.Connection[Any], name: str) -> None:
    """Drop the publication if it exists."""
    conn.execute(sql.SQL("DROP PUBLICATION IF EXISTS {}").format(sql.Identifier(name)))


def grant_capture(conn: psycopg.Connection[Any], role: str, tables: Sequence[str]) -> list[str]:
    """USAGE on the tables' schemas and SELECT on the tables, to ``role``.

    Returns the tables ``role`` could not read before (what :func:`revoke_capture` takes back).
    """
    granted = []
    for table in tables:
        schema, _ = split_table(table)
        conn.execute(
            sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(
                sql.Identifier(schema), sql.Identifier(role)
            )
        )
        if not table_privileges(conn, role, table)["SELECT"]:
            conn.execute(
                sql.SQL("GRANT SELECT ON TABLE {} TO {}").format(
                    qualified(table), sql.Identifier(role)
                )
            )
            granted.append(table)
    return granted


def revoke_capture(conn: psycopg.Connection[Any], role: str, tables: Sequence[str]) -> None:
    """Take back SELECT on ``tables`` (schema USAGE stays: other captures may need it)."""
    for table in tables:
        conn.execute(
            sql.SQL("REVOKE SELECT ON TABLE {} FROM {}").format(
                qualified(table), sql.Identifier(role)
            )
        )


def grant_signal_writes(conn: psycopg.Connection[Any], role: str, table: str) -> None:
    """INSERT on a Debezium signal table, where the connector writes its incremental
    snapshot's window marks (:mod:`cdc_support.kafka.signals`)."""
    conn.execute(
        sql.SQL("GRANT INSERT ON TABLE {} TO {}").format(qualified(table), sql.Identifier(role))
    )


def revoke_signal_writes(conn: psycopg.Connection[Any], role: str, table: str) -> None:
    """Take back :func:`grant_signal_writes`."""
    conn.execute(
        sql.SQL("REVOKE INSERT ON TABLE {} FROM {}").format(qualified(table), sql.Identifier(role))
    )


def table_privileges(conn: psycopg.Connection[Any], role: str, table: str) -> dict[str, bool]:
    """Which of SELECT, INSERT, UPDATE, DELETE, TRUNCATE ``role`` holds on ``table``."""
    name = ".".join(split_table(table))
    row = conn.execute(
        "SELECT " + ", ".join(f"has_table_privilege(%s, %s, '{p}')" for p in PRIVILEGES),
        [v for _ in PRIVILEGES for v in (role, name)],
    ).fetchone()
    assert row is not None
    return dict(zip(PRIVILEGES, row, strict=True))


def role_attributes(conn: psycopg.Connection[Any], role: str) -> dict[str, bool]:
    """The role's attributes from pg_roles (superuser, replication, login, createdb, ...)."""
    cur = conn.execute(
        "SELECT rolsuper AS superuser, rolreplication AS replication, rolcanlogin AS login, "
        "rolcreatedb AS createdb, rolcreaterole AS createrole, rolbypassrls AS bypassrls "
        "FROM pg_roles WHERE rolname = %s",
        (role,),
    )
    row = cur.fetchone()
    if row is None:
        raise ValueError(f"no role {role!r} on this server")
    return dict(zip([d.name for d in cur.description or []], row, strict=True))


def replication_client(conn: psycopg.Connection[Any], slot: str) -> dict[str, Any] | None:
    """The walsender streaming from ``slot`` (pg_stat_replication: pid, usename, ...), if any."""
    cur = conn.execute(
        "SELECT r.pid, r.usename, r.application_name, r.client_addr::text, r.state "
        "FROM pg_stat_replication r JOIN pg_replication_slots s ON s.active_pid = r.pid "
        "WHERE s.slot_name = %s",
        (slot,),
    )
    row = cur.fetchone()
    if row is None:
        return None
    return dict(zip([d.name for d in cur.description or []], row, strict=True))


def write_attempts(dsn: str, table: str) -> dict[str, str]:
    """Try INSERT, UPDATE and DELETE on ``table`` as the DSN's role (matching no row, rolled
    back); each statement -> PostgreSQL's answer (``allowed`` when it ran)."""
    target = qualified(table)
    answers = {}
    with psycopg.connect(dsn) as conn:
        key = sql.Identifier(primary_key(conn, table)[0])
        statements = {
            "INSERT": sql.SQL("INSERT INTO {} SELECT * FROM {} WHERE false").format(target, target),
            "UPDATE": sql.SQL("UPDATE {} SET {} = {} WHERE false").format(target, key, key),
            "DELETE": sql.SQL("DELETE FROM {} WHERE false").format(target),
        }
        for kind, statement in statements.items():
            try:
                conn.execute(statement)
                answers[kind] = "allowed"
            except psycopg.errors.InsufficientPrivilege as exc:
                answers[kind] = str(exc).strip().splitlines()[0]
            finally:
                conn.rollback()
    return answers
