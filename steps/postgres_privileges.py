"""Steps for features/postgres/debezium.feature: who Debezium streams as, and what it may do."""

from __future__ import annotations

from pytest_bdd import parsers, then

from cdc_support.postgres.privileges import (
    replication_client,
    role_attributes,
    table_privileges,
    write_attempts,
)
from cdc_support.postgres.source_table import PostgresTable
from cdc_support.waiting import wait_until
from pytest_cdc.janitor import PgDatabase
from pytest_cdc.report import evidence
from steps.postgres_debezium import Capture


@then("the connector streams as the replication role, not as a superuser")
def streams_as_replication_role(capture: Capture, source_table: PostgresTable) -> None:
    """pg_stat_replication names the role of the walsender that holds the connector's slot."""
    role = capture.connector.config["database.user"]
    slot = str(capture.connector.slot_name)
    client = wait_until(
        lambda: replication_client(source_table.conn, slot),
        done=lambda found: found is not None,
        timeout=30.0,
        expected=f"a walsender streaming from slot {slot}",
        describe=lambda found: "no walsender holds the slot",
    )
    attributes = role_attributes(source_table.conn, role)
    evidence.attach_json(
        "replication client (pg_stat_replication)",
        {"client": client, "role": role, "role attributes": attributes},
    )
    assert client is not None and client["usename"] == role, f"replication client: {client}"
    assert attributes["replication"] and attributes["login"], attributes
    unwanted = [k for k in ("superuser", "createdb", "createrole", "bypassrls") if attributes[k]]
    assert not unwanted, f"role {role} has {unwanted}: it should only log in and replicate"


@then(parsers.parse("the replication role may read the {table} table but not write it"))
def role_reads_but_cannot_write(
    capture: Capture, source_table: PostgresTable, pg_database: PgDatabase, table: str
) -> None:
    """SELECT (granted for the snapshot) only; INSERT, UPDATE, DELETE are refused."""
    role = capture.connector.config["database.user"]
    privileges = table_privileges(source_table.conn, role, table)
    attempts = write_attempts(pg_database.replication_dsn, table)
    evidence.attach_json(
        f"what {role} may do on {table}", {"privileges": privileges, "write attempts": attempts}
    )
    assert privileges["SELECT"], f"{role} cannot read {table}: {privileges}"
    held = [p for p, granted in privileges.items() if granted and p != "SELECT"]
    assert not held, f"{role} holds {held} on {table}"
    allowed = [kind for kind, answer in attempts.items() if answer == "allowed"]
    assert not allowed, f"{role} could run {allowed} on {table}: {attempts}"
