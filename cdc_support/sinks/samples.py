"""A PostgreSQL table with a column of each common type, for the typed-sink features.

:data:`TYPED_COLUMNS` is the table (its PostgreSQL types), :data:`TYPED_ROWS` rows with edge
values (the largest numeric(38,10), dates before 1970, the last microsecond of a day, JSON with
non-ASCII text, arrays with nulls, empty bytes, ...). :func:`table_form` says what a Delta or
Iceberg table should hold for a source row: the same values, except where the format has no
such type (Delta: a time as µs since midnight, a uuid as its text). JSON is compared as
PostgreSQL's own text of it (``doc::text``), which is what Debezium sends and the sink stores.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from psycopg import sql

from cdc_support.postgres.tables import (
    create_documents_table,
    insert_rows,
    random_bytes,
    random_text,
    update_one,
)
from cdc_support.sinks.config import SinkTarget

__all__ = [
    "DOCUMENTS",
    "TYPED_COLUMNS",
    "TYPED_ROWS",
    "TYPED_TABLE",
    "CapturedSample",
    "alter_column_type",
    "batches_of_keys",
    "create_documents",
    "create_typed_table",
    "dead_letter_reasons",
    "decimal_key",
    "differing_values",
    "fetch_typed_rows",
    "fits_decimal",
    "insert_typed_row",
    "native_table_types",
    "readable",
    "table_form",
    "unavailable_counts",
    "update_typed_row",
]

TYPED_TABLE = "typed_sample"
DOCUMENTS = "documents"
TYPED_COLUMNS: dict[str, str] = {
    "id": "bigint PRIMARY KEY",
    "amount": "numeric(38,10)",
    "happened_at": "timestamptz",
    "day": "date",
    "at_time": "time",
    "doc": "jsonb",
    "tags": "text[]",
    "uid": "uuid",
    "payload": "bytea",
    "flag": "boolean",
    "big": "bigint",
    "ratio": "double precision",
    "label": "varchar(40)",
}
"""Column -> PostgreSQL type."""

_UTC = dt.UTC
TYPED_ROWS: tuple[dict[str, Any], ...] = (
    {
        "id": 1,
        "amount": Decimal("12345678901234567890.0123456789"),
        "happened_at": dt.datetime(
            2024, 2, 29, 23, 59, 59, 999999, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30))
        ),
        "day": dt.date(2024, 2, 29),
        "at_time": dt.time(23, 59, 59, 999999),
        "doc": '{"b": {"c": "ü"}, "a": [1, 2.5, null]}',
        "tags": ["a", "b c", None, "ü"],
        "uid": uuid.UUID("6f1c2d0e-8a43-4c3b-9f0e-2b1d7c9a5e11"),
        "payload": b"\x00\xff\x10",
        "flag": True,
        "big": 9223372036854775807,
        "ratio": 0.1,
        "label": "varchar ü",
    },
    {
        "id": 2,
        "amount": Decimal("-0.0000000001"),
        "happened_at": dt.datetime(1969, 12, 31, 23, 59, 59, 1, tzinfo=_UTC),
        "day": dt.date(1969, 12, 31),
        "at_time": dt.time(0, 0),
        "doc": "[]",
        "tags": [],
        "uid": uuid.UUID("00000000-0000-0000-0000-000000000000"),
        "payload": b"",
        "flag": False,
        "big": -9223372036854775808,
        "ratio": -2.5e-300,
        "label": "",
    },
    {"id": 3},
)
"""Rows with edge values (row 3 is null in every column but its key)."""


def _table(table: str) -> sql.Identifier:
    return sql.Identifier(table)


def create_typed_table(conn: Any, table: str = TYPED_TABLE) -> None:
    """CREATE TABLE with :data:`TYPED_COLUMNS`."""
    columns = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(kind))
        for name, kind in TYPED_COLUMNS.items()
    )
    conn.execute(sql.SQL("CREATE TABLE {} ({})").format(_table(table), columns))


def _cast(name: str) -> sql.Composable:
    """``%s::<type>`` without the type's modifiers: the column's own (which may have been
    altered) applies on assignment."""
    kind = re.sub(r"\(.*?\)| PRIMARY KEY", "", TYPED_COLUMNS[name])
    return sql.SQL("{}::{}").format(sql.Placeholder(), sql.SQL(kind))


def insert_typed_row(conn: Any, row: Mapping[str, Any], table: str = TYPED_TABLE) -> None:
    """INSERT one row (its own transaction); each value cast to its column's type, so JSON
    and numeric text (``"NaN"``) go in as given."""
    names = list(row)
    conn.execute(
        sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
            _table(table),
            sql.SQL(", ").join(map(sql.Identifier, names)),
            sql.SQL(", ").join(_cast(n) for n in names),
        ),
        [_text(row[n]) for n in names],
    )


def update_typed_row(
    conn: Any, key: int, changes: Mapping[str, Any], table: str = TYPED_TABLE
) -> None:
    """UPDATE the row ``id = key`` (its own transaction)."""
    sets = sql.SQL(", ").join(
        sql.SQL("{} = {}").format(sql.Identifier(n), _cast(n)) for n in changes
    )
    query = sql.SQL("UPDATE {} SET {} WHERE id = %s").format(_table(table), sets)
    cur = conn.execute(query, [*(_text(v) for v in changes.values()), key])
    if cur.rowcount != 1:
        raise ValueError(f"no row of {table} has id {key}")


def alter_column_type(conn: Any, column: str, kind: str, table: str = TYPED_TABLE) -> None:
    """ALTER TABLE ... ALTER COLUMN ... TYPE (e.g. widen a numeric)."""
    conn.execute(
        sql.SQL("ALTER TABLE {} ALTER COLUMN {} TYPE {}").format(
            _table(table), sql.Identifier(column), sql.SQL(kind)
        )
    )


def _text(value: Any) -> Any:
    """Decimals go in as text, so ``Decimal('NaN')`` and 40-digit numbers reach PostgreSQL."""
    return str(value) if isinstance(value, Decimal) else value


def fetch_typed_rows(conn: Any, table: str = TYPED_TABLE) -> dict[tuple[Any, ...], dict]:
    """The table by key, as psycopg reads it, with ``doc`` as PostgreSQL's JSON text."""
    names = sql.SQL(", ").join(
        sql.SQL("{}::text AS {}").format(sql.Identifier(n), sql.Identifier(n))
        if n == "doc"
        else sql.Identifier(n)
        for n in TYPED_COLUMNS
    )
    cur = conn.execute(sql.SQL("SELECT {} FROM {} ORDER BY id").format(names, _table(table)))
    columns = [d.name for d in cur.description]
    return {(row[0],): dict(zip(columns, row, strict=True)) for row in cur.fetchall()}


def fits_decimal(value: Decimal | None, precision: int, scale: int) -> bool:
    """True when ``value`` is a number a decimal(precision, scale) column holds exactly."""
    if value is None or not value.is_finite():
        return False
    exponent = value.as_tuple().exponent
    places = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    return places <= scale and abs(value) < Decimal(10) ** (precision - scale)


def _micros(value: dt.time) -> int:
    seconds = (value.hour * 60 + value.minute) * 60 + value.second
    return seconds * 1_000_000 + value.microsecond


def table_form(row: Mapping[str, Any], fmt: str) -> dict[str, Any]:
    """What a ``fmt`` ("delta" or "iceberg") sink table holds for a source row."""
    if fmt != "delta":
        return dict(row)
    held = dict(row)
    for name, value in row.items():
        if isinstance(value, dt.time):
            held[name] = _micros(value)
        elif isinstance(value, uuid.UUID):
            held[name] = str(value)
    return held


def native_table_types(target: SinkTarget, app_id: str) -> dict[str, str]:
    """The sink table's columns as its format names their types."""
    sink = target.open(app_id=app_id)
    try:
        return sink.native_types()
    finally:
        sink.close()


def differing_values(
    expected: Mapping[tuple[Any, ...], Mapping[str, Any]],
    actual: Mapping[tuple[Any, ...], Mapping[str, Any]],
    columns: Sequence[str],
) -> list[dict[str, Any]]:
    """Every (key, column) whose value differs in value or Python type, for the report."""
    found = []
    for key in sorted(set(expected) | set(actual)):
        want, got = expected.get(key) or {}, actual.get(key) or {}
        for name in columns:
            a, b = want.get(name), got.get(name)
            if a != b or type(a) is not type(b):
                found.append({"key": list(key), "column": name, "source": a, "table": b})
    return found


def readable(row: Mapping[str, Any], limit: int = 120) -> dict[str, str]:
    """Each value as Python writes it (its type and exact value), long ones cut: for reports."""
    shown = {}
    for name, value in row.items():
        text = repr(value)
        shown[name] = text if len(text) <= limit else f"{text[:60]}... ({len(text)} chars)"
    return shown


def batches_of_keys(commit_log: Sequence[Mapping[str, Any]]) -> list[set[tuple[str, tuple]]]:
    """Per table commit of a sink's commit log: the (op, key) of each event it applied."""
    return [
        {(op, tuple(key)) for _, _, op, key, _ in entry["events"]}
        for entry in commit_log
        if entry.get("kind") == "commit"
    ]


def unavailable_counts(commit_log: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """From a sink's commit log: events that carried Debezium's placeholder, and rows whose
    value the table had to give (not an earlier event of the batch)."""
    commits = [e for e in commit_log if e.get("kind") == "commit"]
    return {
        "events": sum(int(c["summary"].get("unavailable", 0)) for c in commits),
        "filled_from_table": sum(int(c["detail"].get("unavailable_rows", 0)) for c in commits),
    }


def decimal_key(value: Any) -> str:
    """A numeric (Decimal or text) as a dict key: ``1e40``, ``"1E+40"`` and the 50 digits of
    ``10**40`` are one key; so are ``Decimal("NaN")`` and ``"NaN"`` (NaN equals nothing)."""
    return str(Decimal(str(value)).normalize())


def dead_letter_reasons(letters: Sequence[Mapping[str, Any]], column: str) -> dict[str, str]:
    """Dead letters of Debezium records (schemas enabled) by the ``after`` value of a numeric
    ``column`` (see :func:`decimal_key`): the reason in their headers."""
    return {
        decimal_key(json.loads(x["value"])["payload"]["after"][column]): x["headers"].get(
            "cdc.dlq.reason", ""
        )
        for x in letters
    }


# --------------------------------------------------------------------------- scenario tables


def create_documents(conn: Any) -> None:
    """``documents (id, title, body text, attachment bytea)``, REPLICA IDENTITY DEFAULT: an
    update's WAL record holds the key and what it changed, not unchanged TOASTed values."""
    create_documents_table(conn, DOCUMENTS, "DEFAULT")


@dataclass
class CapturedSample:
    """A sample table (:data:`TYPED_TABLE`, :data:`DOCUMENTS`) a sink scenario writes to, the
    Debezium topic it is captured to, and how many change events were written to it.

    Not a :class:`cdc_support.source_table.SourceTable` (a generated table with a workload,
    for either database): this one is PostgreSQL's typed or documents table, written row by
    row by the typed-sink steps."""

    conn: Any
    table: str
    topic: str
    changes: int = 0
    next_id: int = 1
    large: dict[int, tuple[str, bytes]] = field(default_factory=dict)
    """Document id -> its large body and attachment."""

    def __repr__(self) -> str:
        return f"{self.table} ({self.changes} change events)"

    def insert_amounts(self, amounts: str) -> None:
        """One :data:`TYPED_TABLE` row per amount of "1.5, 2 and 3" (other columns null),
        each committed."""
        for text in amounts.replace(" and ", ", ").split(", "):
            insert_typed_row(self.conn, {"id": self.next_id, "amount": Decimal(text)}, self.table)
            self.next_id += 1
            self.changes += 1

    def insert_document(self, key: int, size: int) -> None:
        """A document with ``size`` random characters of body and random bytes of attachment
        (incompressible, so PostgreSQL stores them out of line)."""
        body, attachment = random_text(size, seed=key), random_bytes(size, seed=100 + key)
        row = {"id": key, "title": f"document {key}", "body": body, "attachment": attachment}
        insert_rows(self.conn, self.table, [row])
        self.large[key] = (body, attachment)
        self.changes += 1

    def rename_document(self, key: int) -> None:
        """UPDATE the title alone."""
        update_one(self.conn, self.table, {"id": key}, {"title": f"document {key}, renamed"})
        self.changes += 1
