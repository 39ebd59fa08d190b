"""Replica identity checks and keyless-table helpers on the stack's real PostgreSQL."""

from __future__ import annotations

import psycopg
import pytest

from cdc_support.postgres.tables import (
    ReplicaIdentityMissing,
    check_replica_identity,
    create_keyless_table,
    delete_one,
    fetch_rows,
    insert_rows,
    publication_refusal,
    replica_identity_problems,
    update_one,
)

pytestmark = pytest.mark.postgres


def test_only_tables_without_a_usable_replica_identity_are_named(pg_conn: psycopg.Connection):
    conn = pg_conn
    conn.execute("CREATE TABLE keyed (id int PRIMARY KEY)")
    create_keyless_table(conn, "full_rows", "FULL")
    create_keyless_table(conn, "bare", "DEFAULT")
    conn.execute("CREATE TABLE nothing (id int PRIMARY KEY)")
    conn.execute("ALTER TABLE nothing REPLICA IDENTITY NOTHING")
    conn.execute("CREATE TABLE by_index (id int NOT NULL)")
    conn.execute("CREATE UNIQUE INDEX by_index_id ON by_index (id)")
    conn.execute("ALTER TABLE by_index REPLICA IDENTITY USING INDEX by_index_id")
    tables = ["keyed", "public.full_rows", "bare", "nothing", "by_index", "not_created_yet"]
    assert replica_identity_problems(conn, tables) == {
        "public.bare": "has no primary key and REPLICA IDENTITY DEFAULT",
        "public.nothing": "has REPLICA IDENTITY NOTHING",
    }
    conn.execute("DROP INDEX by_index_id")  # the identity index is gone: nothing left
    assert "public.by_index" in replica_identity_problems(conn, ["by_index"])
    check_replica_identity(conn, ["keyed", "full_rows"])
    with pytest.raises(ReplicaIdentityMissing) as info:
        check_replica_identity(conn, ["keyed", "bare"])
    message = str(info.value)
    assert "\n" not in message
    assert "ALTER TABLE public.bare REPLICA IDENTITY FULL" in message
    assert "add a primary key" in message


def test_postgres_refuses_updates_of_a_published_table_without_identity(pg_conn):
    create_keyless_table(pg_conn, "notes", "DEFAULT")
    row = {"note": "a", "n": 1}
    insert_rows(pg_conn, "notes", [row])
    message = publication_refusal(pg_conn, "notes", "demo_pub", row)
    assert 'cannot update table "notes"' in message
    assert "does not have a replica identity and publishes updates" in message
    update_one(pg_conn, "notes", row, {"n": 2})  # without the publication it works again


def test_update_one_and_delete_one_touch_one_of_several_equal_rows(pg_conn):
    create_keyless_table(pg_conn, "notes", "FULL")
    row = {"note": "same", "n": 1}
    insert_rows(pg_conn, "notes", [row, row, row])
    update_one(pg_conn, "notes", row, {"n": 2})
    delete_one(pg_conn, "notes", row)
    assert sorted(r["n"] for r in fetch_rows(pg_conn, "notes")) == [1, 2]
    with pytest.raises(ValueError, match="no row of notes equals"):
        delete_one(pg_conn, "notes", {"note": "other", "n": 1})
