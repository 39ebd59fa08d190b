"""Per-scenario cleanup on the stack's real PostgreSQL: slots and databases leave no trace."""

from __future__ import annotations

import psycopg

from cdc_support.postgres.source import drop_slot
from pytest_cdc.janitor import scenario_database, scenario_name


def _slots(conn: psycopg.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT slot_name FROM pg_replication_slots").fetchall()}


def test_drop_slot_drops_an_idle_slot_and_reports_a_missing_one(pg_database) -> None:
    with psycopg.connect(pg_database.dsn, autocommit=True) as conn:
        slot = scenario_name("janitor slot")
        conn.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (slot,))
        assert slot in _slots(conn)
        assert drop_slot(conn, slot, timeout=5) is True
        assert slot not in _slots(conn)
        assert drop_slot(conn, slot, timeout=5) is False


def test_scenario_database_drops_itself_and_its_slots(cdc_stack) -> None:
    name = scenario_name("janitor database")
    with (
        scenario_database(cdc_stack.postgres_dsn, name) as database,
        psycopg.connect(database.dsn, autocommit=True) as conn,
    ):
        conn.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (name,))
    with psycopg.connect(cdc_stack.postgres_dsn, autocommit=True) as admin:
        assert name not in _slots(admin)
        databases = {r[0] for r in admin.execute("SELECT datname FROM pg_database").fetchall()}
        assert name not in databases
