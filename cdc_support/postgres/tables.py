"""PostgreSQL tables as CDC sees them: replica identity checks, keyless and TOASTed tables.

A logical-replication publication that publishes updates and deletes needs, for every table
it covers, a replica identity: the primary key (REPLICA IDENTITY DEFAULT), a unique index
(USING INDEX) or the whole row (FULL). Without one PostgreSQL refuses the *application's*
UPDATE and DELETE on the table ("cannot update table ... because it does not have a replica
identity and publishes updates") as soon as the publication exists. :func:`check_replica_identity`
finds such tables before a connector (and its publication) is made.
"""

from __future__ import annotations

import base64
import random
import string
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from cdc_support.postgres.source import qualified, set_replica_identity, split_table

__all__ = [
    "ReplicaIdentityMissing",
    "base64_bytes",
    "check_replica_identity",
    "create_documents_table",
    "create_keyless_table",
    "delete_one",
    "fetch_rows",
    "insert_rows",
    "publication_refusal",
    "random_bytes",
    "random_text",
    "replica_identity_problems",
    "replication_objects",
    "toast_bytes",
    "update_one",
]


class ReplicaIdentityMissing(ValueError):
    """A table to capture has no replica identity; the one-line message names the fix."""


_IDENTITY_QUERY = """
SELECT c.relreplident,
       EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary),
       EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisreplident)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r', 'p')
"""


def replica_identity_problems(
    conn: psycopg.Connection[Any], tables: Sequence[str]
) -> dict[str, str]:
    """``schema.table -> what is wrong`` for each table whose UPDATE/DELETE a publication
    would make PostgreSQL refuse; empty when every table has a replica identity.

    Reads ``pg_class.relreplident`` and the table's primary key / replica identity index.
    Tables that do not exist (yet) are not judged here.
    """
    problems: dict[str, str] = {}
    for table in tables:
        schema, name = split_table(table)
        row = conn.execute(_IDENTITY_QUERY, (schema, name)).fetchone()
        if row is None:
            continue
        identity, has_primary_key, has_identity_index = row
        if identity == "d" and not has_primary_key:
            problem = "has no primary key and REPLICA IDENTITY DEFAULT"
        elif identity == "n":
            problem = "has REPLICA IDENTITY NOTHING"
        elif identity == "i" and not has_identity_index:
            problem = "has REPLICA IDENTITY USING INDEX but no such index"
        else:
            continue
        problems[f"{schema}.{name}"] = problem
    return problems


def check_replica_identity(conn: psycopg.Connection[Any], tables: Sequence[str]) -> None:
    """Raise ReplicaIdentityMissing (one line, naming the fix) if a table lacks an identity."""
    problems = replica_identity_problems(conn, tables)
    if not problems:
        return
    what = "; ".join(f"{table} {problem}" for table, problem in problems.items())
    fixes = " / ".join(f"ALTER TABLE {table} REPLICA IDENTITY FULL" for table in problems)
    raise ReplicaIdentityMissing(
        f"refusing to capture: {what}, so once the connector's publication covers it "
        'PostgreSQL rejects its UPDATE and DELETE ("does not have a replica identity and '
        f'publishes updates"); run {fixes}, or add a primary key'
    )


# --------------------------------------------------------------------------- keyless tables


def create_keyless_table(conn: psycopg.Connection[Any], table: str, identity: str) -> None:
    """A table without a primary key (``note text, n int``) with the given REPLICA IDENTITY."""
    conn.execute(
        sql.SQL("CREATE TABLE {} (note text NOT NULL, n integer NOT NULL)").format(qualified(table))
    )
    set_replica_identity(conn, table, identity)


def insert_rows(
    conn: psycopg.Connection[Any], table: str, rows: Sequence[Mapping[str, Any]]
) -> None:
    """Insert rows (dicts with the same columns), each row its own statement."""
    for row in rows:
        conn.execute(
            sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
                qualified(table),
                sql.SQL(", ").join(map(sql.Identifier, row)),
                sql.SQL(", ").join(sql.Placeholder() * len(row)),
            ),
            list(row.values()),
        )


def fetch_rows(conn: psycopg.Connection[Any], table: str) -> list[dict[str, Any]]:
    """Every row of the table, as a list (a keyless table is a multiset of rows)."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sql.SQL("SELECT * FROM {}").format(qualified(table)))
        return list(cur)


def _one_row(table: str, match: Mapping[str, Any]) -> sql.Composed:
    """``ctid = (one row equal to match)``: how to touch one of several equal rows."""
    where = sql.SQL(" AND ").join(
        sql.SQL("{} = {}").format(sql.Identifier(c), sql.Placeholder()) for c in match
    )
    return sql.SQL("ctid = (SELECT ctid FROM {} WHERE {} LIMIT 1)").format(qualified(table), where)


def update_one(
    conn: psycopg.Connection[Any],
    table: str,
    match: Mapping[str, Any],
    changes: Mapping[str, Any],
) -> None:
    """Update ONE row equal to ``match`` (even if several are) with ``changes``."""
    sets = sql.SQL(", ").join(
        sql.SQL("{} = {}").format(sql.Identifier(c), sql.Placeholder()) for c in changes
    )
    query = sql.SQL("UPDATE {} SET {} WHERE {}").format(
        qualified(table), sets, _one_row(table, match)
    )
    cur = conn.execute(query, [*changes.values(), *match.values()])
    if cur.rowcount != 1:
        raise ValueError(f"no row of {table} equals {dict(match)}")


def delete_one(conn: psycopg.Connection[Any], table: str, match: Mapping[str, Any]) -> None:
    """Delete ONE row equal to ``match`` (even if several are)."""
    query = sql.SQL("DELETE FROM {} WHERE {}").format(qualified(table), _one_row(table, match))
    cur = conn.execute(query, list(match.values()))
    if cur.rowcount != 1:
        raise ValueError(f"no row of {table} equals {dict(match)}")


def publication_refusal(
    conn: psycopg.Connection[Any], table: str, publication: str, row: Mapping[str, Any]
) -> str:
    """PostgreSQL's own error for an UPDATE of ``row`` once ``publication`` covers ``table``.

    Creates the publication (all operations published), tries the UPDATE and drops the
    publication again; returns the server's message and hint. ValueError if the UPDATE went
    through (the table has a replica identity after all).
    """
    create = sql.SQL("CREATE PUBLICATION {} FOR TABLE {}").format(
        sql.Identifier(publication), qualified(table)
    )
    conn.execute(create)
    try:
        update_one(conn, table, row, dict(row))
    except psycopg.errors.ObjectNotInPrerequisiteState as exc:
        hint = exc.diag.message_hint
        return f"{exc.diag.message_primary}" + (f" (HINT: {hint})" if hint else "")
    finally:
        conn.execute(sql.SQL("DROP PUBLICATION {}").format(sql.Identifier(publication)))
    raise ValueError(f"PostgreSQL accepted the UPDATE of {table} under publication {publication}")


# --------------------------------------------------------------------------- TOASTed values


def create_documents_table(conn: psycopg.Connection[Any], table: str, identity: str) -> None:
    """``id`` primary key, a short ``title``, and two columns for large values: ``body``
    (text) and ``attachment`` (bytea), with the given REPLICA IDENTITY."""
    conn.execute(
        sql.SQL(
            "CREATE TABLE {} (id integer PRIMARY KEY, title text NOT NULL, body text, "
            "attachment bytea)"
        ).format(qualified(table))
    )
    set_replica_identity(conn, table, identity)


def random_text(size: int, seed: int) -> str:
    """``size`` random letters and digits: incompressible enough to be stored out of line."""
    rng = random.Random(seed)
    return "".join(rng.choices(string.ascii_letters + string.digits, k=size))


def random_bytes(size: int, seed: int) -> bytes:
    """``size`` random bytes (seeded)."""
    return random.Random(seed).randbytes(size)


def toast_bytes(conn: psycopg.Connection[Any], table: str) -> int:
    """Size of the table's TOAST relation: > 0 once a value is stored out of line."""
    row = conn.execute(
        "SELECT pg_relation_size(reltoastrelid) FROM pg_class WHERE oid = %s::regclass",
        (".".join(split_table(table)),),
    ).fetchone()
    return int(row[0]) if row else 0


def base64_bytes(value: Any) -> Any:
    """Normalizer for bytea: Debezium's base64 text (JsonConverter) -> bytes; bytes stay."""
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except ValueError:
            return value
    if isinstance(value, memoryview | bytearray):
        return bytes(value)
    return value


def replication_objects(conn: psycopg.Connection[Any]) -> dict[str, list[str]]:
    """The replication slots and publications of ``conn``'s database, by name."""
    slots = conn.execute(
        "SELECT slot_name FROM pg_replication_slots WHERE database = current_database() ORDER BY 1"
    ).fetchall()
    publications = conn.execute("SELECT pubname FROM pg_publication ORDER BY 1").fetchall()
    return {"slots": [r[0] for r in slots], "publications": [r[0] for r in publications]}
