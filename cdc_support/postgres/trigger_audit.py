"""Trigger-based audit: a row trigger writes every change to an audit table; a reader polls it.

Installed on the source (:func:`install`)::

    cdc_audit(id bigserial, table_schema, table_name, op 'c'|'u'|'d', before jsonb, after jsonb,
              txid xid8 DEFAULT pg_current_xact_id(), committed_at timestamptz)
    cdc_audit_capture()             -- the trigger function: INSERT INTO cdc_audit ...
    cdc_audit_<table> ON <table>    -- CONSTRAINT TRIGGER ... DEFERRABLE INITIALLY DEFERRED

The trigger is a *deferred constraint trigger*: it fires for each row change, with the row as
it was at that change, but only when the transaction commits — so ``clock_timestamp()`` in it
reads (just before) the commit time, and a rolled-back transaction writes no audit rows.

Reading (:class:`TriggerAuditApproach`): a plain "audit id greater than the last one read"
watermark loses rows. Ids are taken when a row is written, but rows become visible when their
transaction commits: a transaction holding id 10 can commit after one holding id 11 was read.
So the reader keeps the *transaction snapshot* of its last read instead (as PgQ does): each
poll, in one REPEATABLE READ transaction, reads the audit rows of transactions that its new
snapshot sees as committed and the previous snapshot did not, then saves the new snapshot.

Cost: one audit row (and its WAL, index entries and vacuum work) per row change, written in
the writer's own transaction.
"""

from __future__ import annotations

import decimal
import functools
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import set_json_loads

from cdc_support.checkpoint import JsonCheckpoint
from cdc_support.events import ChangeEvent
from cdc_support.postgres.base import Declared, PolledCapture, checkpoint_for, now
from cdc_support.postgres.source import qualified, split_table

__all__ = [
    "TriggerAuditApproach",
    "audit_row_to_event",
    "audit_rows",
    "install",
    "uninstall",
]

_FUNCTION_BODY = """
BEGIN
  INSERT INTO {audit} (table_schema, table_name, op, before, after)
  VALUES (TG_TABLE_SCHEMA, TG_TABLE_NAME,
          CASE TG_OP WHEN 'INSERT' THEN 'c' WHEN 'UPDATE' THEN 'u' ELSE 'd' END,
          CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END,
          CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END);
  RETURN NULL;
END
"""


def _names(table: str, audit_table: str) -> dict[str, sql.Composable]:
    _, name = split_table(table)
    return {
        "audit": sql.Identifier(audit_table),
        "table": qualified(table),
        "function": sql.Identifier(f"{audit_table}_capture"),
        "trigger": sql.Identifier(f"{audit_table}_{name}"),
        "txid_index": sql.Identifier(f"{audit_table}_txid_idx"),
    }


def install(conn: psycopg.Connection[Any], table: str, *, audit_table: str = "cdc_audit") -> None:
    """Create the audit table, the trigger function and the deferred row trigger on ``table``."""
    n = _names(table, audit_table)
    statements = [
        sql.SQL(
            "CREATE TABLE {audit} (id bigserial PRIMARY KEY, table_schema text NOT NULL, "
            "table_name text NOT NULL, op char(1) NOT NULL CHECK (op IN ('c', 'u', 'd')), "
            "before jsonb, after jsonb, txid xid8 NOT NULL DEFAULT pg_current_xact_id(), "
            "committed_at timestamptz NOT NULL DEFAULT clock_timestamp())"
        ),
        sql.SQL("CREATE INDEX {txid_index} ON {audit} (txid)"),
        sql.SQL("CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS {body}"),
        sql.SQL(
            "CREATE CONSTRAINT TRIGGER {trigger} AFTER INSERT OR UPDATE OR DELETE ON {table} "
            "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION {function}()"
        ),
    ]
    body = sql.Literal(_FUNCTION_BODY.format(audit=sql.Identifier(audit_table).as_string(conn)))
    with conn.transaction():
        for statement in statements:
            conn.execute(statement.format(body=body, **n))


def uninstall(conn: psycopg.Connection[Any], table: str, *, audit_table: str = "cdc_audit") -> None:
    """Drop the trigger, its function and the audit table (each IF EXISTS)."""
    n = _names(table, audit_table)
    with conn.transaction():
        exists = conn.execute("SELECT to_regclass(%s)", (".".join(split_table(table)),))
        if exists.fetchone() != (None,):
            conn.execute(sql.SQL("DROP TRIGGER IF EXISTS {trigger} ON {table}").format(**n))
        conn.execute(sql.SQL("DROP FUNCTION IF EXISTS {function}()").format(**n))
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {audit}").format(**n))


def audit_rows(conn: psycopg.Connection[Any], *, audit_table: str = "cdc_audit") -> int:
    """How many audit rows the table holds (the extra rows written on the source)."""
    query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(audit_table))
    return int(conn.execute(query).fetchone()[0])  # type: ignore[index]


def audit_row_to_event(
    row: Mapping[str, Any], key: Sequence[str], observed_ts: float | None
) -> ChangeEvent:
    """One audit row -> a ChangeEvent: op, before/after from the JSONB images, the key from
    the image (after, or before for a delete), commit time from ``committed_at``."""
    op = str(row["op"]).strip()
    if op not in ("c", "u", "d"):
        raise ValueError(f"audit row {row.get('id')}: unknown op {op!r}")
    before, after = row.get("before"), row.get("after")
    image = before if op == "d" else after
    if image is None:
        raise ValueError(f"audit row {row.get('id')} (op {op!r}) has no row image")
    missing = [k for k in key if k not in image]
    if missing:
        raise ValueError(f"audit row {row.get('id')}: key column(s) {missing} not in the image")
    committed_at = row.get("committed_at")
    return ChangeEvent(
        op=op,  # type: ignore[arg-type]
        key=tuple(image[k] for k in key),
        before=before,
        after=after,
        source={
            "connector": "trigger-audit",
            "audit_id": row.get("id"),
            "txid": row.get("txid"),
            "schema": row.get("table_schema"),
            "table": row.get("table_name"),
        },
        commit_ts=committed_at.timestamp() if committed_at is not None else None,
        observed_ts=observed_ts,
    )


_READ = sql.SQL(
    "SELECT id, table_schema, table_name, op, before, after, txid::text::bigint AS txid, "
    "committed_at FROM {audit} WHERE table_schema = %(schema)s AND table_name = %(table)s "
    "AND (%(previous)s::pg_snapshot IS NULL OR (txid >= pg_snapshot_xmin(%(previous)s) "
    "AND NOT pg_visible_in_snapshot(txid, %(previous)s))) ORDER BY id"
)


class TriggerAuditApproach(PolledCapture):
    """Audit table + deferred row trigger, read every ``interval`` seconds by snapshot."""

    name = "trigger audit"
    declared = Declared(
        hard_deletes=True,
        intermediate_updates=True,
        before_image=True,
        restart_without_loss=True,
        schema_change=True,
        how="a deferred row trigger writes each change to an audit table, polled by snapshot",
    )

    def __init__(
        self,
        dsn: str,
        table: str,
        key: tuple[str, ...],
        *,
        interval: float = 0.5,
        checkpoint: JsonCheckpoint | Path | None = None,
        audit_table: str = "cdc_audit",
    ) -> None:
        checkpoint = checkpoint_for(self.name, dsn, table, checkpoint)
        super().__init__(table, key, interval=interval, checkpoint=checkpoint)
        self.dsn = dsn
        self.audit_table = audit_table
        self.installed = False
        self._conn: psycopg.Connection[Any] | None = None
        self._previous: str | None = None
        self._last_id: int | None = None

    def start(self) -> None:
        if not self.installed:
            with psycopg.connect(self.dsn, autocommit=True) as conn:
                install(conn, self.table, audit_table=self.audit_table)
            self.installed = True
        self._start_polling()

    def stop(self) -> None:
        self._stop_polling()

    def close(self) -> None:
        self._stop_polling()
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            uninstall(conn, self.table, audit_table=self.audit_table)
        self.installed = False

    def _connect(self) -> None:
        conn = psycopg.connect(self.dsn, autocommit=False)
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        set_json_loads(functools.partial(json.loads, parse_float=decimal.Decimal), conn)
        self._conn = conn
        saved = self.checkpoint.load() or {}
        self._previous = saved.get("snapshot")
        self._last_id = saved.get("last_audit_id")

    def _disconnect(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _poll(self) -> list[ChangeEvent]:
        conn = self._conn
        assert conn is not None
        schema, name = split_table(self.table)
        with conn.cursor(row_factory=dict_row) as cur:
            cur.execute("SELECT pg_current_snapshot()::text AS snapshot")
            snapshot = cur.fetchone()["snapshot"]  # type: ignore[index]
            cur.execute(
                _READ.format(audit=sql.Identifier(self.audit_table)),
                {"schema": schema, "table": name, "previous": self._previous},
            )
            rows = cur.fetchall()
        conn.commit()
        observed = now()
        events = [audit_row_to_event(row, self.key, observed) for row in rows]
        self._previous = snapshot
        if rows:
            self._last_id = rows[-1]["id"]
        self.checkpoint.save({"snapshot": snapshot, "last_audit_id": self._last_id})
        return events

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "audit table": self.audit_table}
