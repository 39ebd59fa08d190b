"""Decode PostgreSQL's ``pgoutput`` logical replication messages (protocol version 1).

A pure decoder: bytes in, messages and :class:`~cdc_support.events.ChangeEvent`\\ s out, no
connection. The layouts follow the PostgreSQL documentation, "Logical Replication Message
Formats" (integers are big-endian, strings NUL-terminated):

* Begin ``B``: final LSN (Int64), commit timestamp (Int64, µs since 2000-01-01), xid (Int32);
* Commit ``C``: flags (Int8), commit LSN (Int64), end LSN (Int64), commit timestamp (Int64);
* Origin ``O``: origin LSN (Int64), origin name (String);
* Relation ``R``: relation id (Int32), namespace, name (String), replica identity (Int8), and
  per column: flags (Int8, 1 = part of the replica identity), name, type OID (Int32),
  type modifier (Int32);
* Type ``Y``: type OID (Int32), namespace, name (String);
* Insert ``I``: relation id, ``N`` + new tuple;
* Update ``U``: relation id, optionally ``K`` (old key) or ``O`` (old row) + tuple, ``N`` +
  new tuple;
* Delete ``D``: relation id, ``K`` or ``O`` + tuple;
* Truncate ``T``: number of relations (Int32), options (Int8), relation ids (Int32 each);
* Message ``M``: flags (Int8), LSN (Int64), prefix (String), content (Int32 length + bytes).

A tuple is a column count (Int16) and per column ``n`` (null), ``u`` (unchanged TOASTed value,
not sent) or ``t`` (text: Int32 length + the value in its type's text output form).

:class:`PgoutputDecoder` keeps the Relation messages it has seen and buffers a transaction's
row changes until its Commit, then returns them as change events with the commit time.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import struct
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cdc_support.events import ChangeEvent

__all__ = [
    "UNCHANGED_TOAST",
    "Begin",
    "Column",
    "Commit",
    "Delete",
    "Insert",
    "LogicalMessage",
    "Origin",
    "PgoutputDecoder",
    "PgoutputError",
    "Relation",
    "Transaction",
    "Truncate",
    "TypeInfo",
    "Update",
    "convert_text",
    "decode_message",
    "format_lsn",
    "parse_lsn",
    "pg_timestamp",
]

PG_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
_PG_EPOCH_SECONDS = PG_EPOCH.timestamp()
UNCHANGED_TOAST = "__unchanged_toast_value__"
"""Stands for a TOASTed column an update did not change (pgoutput does not send it)."""

REPLICA_IDENTITY = {"d": "DEFAULT", "n": "NOTHING", "f": "FULL", "i": "INDEX"}

ColumnValue = tuple[str, bytes | None]
"""One column of a tuple: kind (``n`` null, ``u`` unchanged TOAST, ``t`` text) and bytes."""


class PgoutputError(ValueError):
    """A message could not be decoded; the message says what and where."""


def pg_timestamp(microseconds: int) -> float:
    """A pgoutput timestamp (µs since 2000-01-01 UTC) as epoch seconds."""
    return _PG_EPOCH_SECONDS + microseconds / 1_000_000


def format_lsn(lsn: int) -> str:
    """An LSN as PostgreSQL writes it: ``16/B374D848``."""
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def parse_lsn(text: str) -> int:
    """``16/B374D848`` -> integer LSN."""
    high, sep, low = text.partition("/")
    if not sep:
        raise ValueError(f"not an LSN: {text!r} (expected the form 16/B374D848)")
    return (int(high, 16) << 32) + int(low, 16)


# --------------------------------------------------------------------------- messages


@dataclass(frozen=True)
class Begin:
    """Start of a transaction."""

    final_lsn: int
    commit_ts: float
    xid: int


@dataclass(frozen=True)
class Commit:
    """End of a transaction: its commit record's LSN, the LSN after it, the commit time."""

    flags: int
    commit_lsn: int
    end_lsn: int
    commit_ts: float


@dataclass(frozen=True)
class Origin:
    """The replication origin a transaction came from (for changes replayed from elsewhere)."""

    lsn: int
    name: str


@dataclass(frozen=True)
class Column:
    """A column of a Relation message."""

    name: str
    type_oid: int
    type_modifier: int
    identity: bool


@dataclass(frozen=True)
class Relation:
    """A table's description, sent before its first change in a session (and after DDL)."""

    relation_id: int
    namespace: str
    name: str
    replica_identity: str
    columns: tuple[Column, ...]

    @property
    def qualified_name(self) -> str:
        """``schema.table``."""
        return f"{self.namespace}.{self.name}"


@dataclass(frozen=True)
class TypeInfo:
    """A non-built-in data type used by a following Relation message."""

    type_oid: int
    namespace: str
    name: str


@dataclass(frozen=True)
class Insert:
    """A new row."""

    relation_id: int
    new: tuple[ColumnValue, ...]


@dataclass(frozen=True)
class Update:
    """A changed row; ``old`` is sent only when the replica identity asks for it."""

    relation_id: int
    old_kind: str | None  # "K" = replica identity columns only, "O" = whole old row
    old: tuple[ColumnValue, ...] | None
    new: tuple[ColumnValue, ...]


@dataclass(frozen=True)
class Delete:
    """A removed row: its key columns (``K``) or the whole old row (``O``)."""

    relation_id: int
    old_kind: str
    old: tuple[ColumnValue, ...]


@dataclass(frozen=True)
class Truncate:
    """TRUNCATE of one or more tables (no row images)."""

    relation_ids: tuple[int, ...]
    options: int


@dataclass(frozen=True)
class LogicalMessage:
    """A message written with ``pg_logical_emit_message`` (sent only with ``messages``)."""

    transactional: bool
    lsn: int
    prefix: str
    content: bytes


Message = Begin | Commit | Origin | Relation | TypeInfo | Insert | Update | Delete | Truncate
"""A decoded message (:class:`LogicalMessage` too, see :func:`decode_message`)."""


class _Reader:
    """Reads big-endian integers, NUL-terminated strings and byte runs from one message."""

    def __init__(self, data: bytes) -> None:
        self.data = bytes(data)
        self.pos = 0

    def _take(self, fmt: str) -> Any:
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise PgoutputError(
                f"message too short: needed {size} bytes at offset {self.pos}, "
                f"{len(self.data) - self.pos} left (message type {self.data[:1]!r})"
            )
        (value,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return value

    def int8(self) -> int:
        return self._take(">b")

    def uint8(self) -> int:
        return self._take(">B")

    def int16(self) -> int:
        return self._take(">h")

    def int32(self) -> int:
        return self._take(">i")

    def uint32(self) -> int:
        return self._take(">I")

    def int64(self) -> int:
        return self._take(">q")

    def uint64(self) -> int:
        return self._take(">Q")

    def char(self) -> str:
        return chr(self.uint8())

    def string(self) -> str:
        end = self.data.find(b"\0", self.pos)
        if end < 0:
            raise PgoutputError(f"unterminated string at offset {self.pos}")
        text = self.data[self.pos : end].decode("utf-8")
        self.pos = end + 1
        return text

    def raw(self, length: int) -> bytes:
        if length < 0 or self.pos + length > len(self.data):
            raise PgoutputError(f"bad length {length} at offset {self.pos}")
        chunk = self.data[self.pos : self.pos + length]
        self.pos += length
        return chunk

    def tuple_data(self) -> tuple[ColumnValue, ...]:
        count = self.int16()
        values: list[ColumnValue] = []
        for index in range(count):
            kind = self.char()
            if kind in ("n", "u"):
                values.append((kind, None))
            elif kind in ("t", "b"):
                values.append((kind, self.raw(self.int32())))
            else:
                raise PgoutputError(f"unknown tuple column kind {kind!r} for column #{index}")
        return tuple(values)


def _relation(r: _Reader) -> Relation:
    relation_id = r.uint32()
    namespace = r.string() or "pg_catalog"
    name = r.string()
    identity = chr(r.uint8())
    columns = []
    for _ in range(r.int16()):
        flags = r.int8()
        columns.append(Column(r.string(), r.uint32(), r.int32(), bool(flags & 1)))
    return Relation(
        relation_id, namespace, name, REPLICA_IDENTITY.get(identity, identity), tuple(columns)
    )


def _update(r: _Reader) -> Update:
    relation_id = r.uint32()
    marker = r.char()
    old_kind = old = None
    if marker in ("K", "O"):
        old_kind, old = marker, r.tuple_data()
        marker = r.char()
    if marker != "N":
        raise PgoutputError(f"update of relation {relation_id}: expected 'N', got {marker!r}")
    return Update(relation_id, old_kind, old, r.tuple_data())


def decode_message(payload: bytes) -> Message | LogicalMessage:
    """Decode one pgoutput message (the payload of one XLogData message)."""
    if not payload:
        raise PgoutputError("empty pgoutput message")
    r = _Reader(payload)
    tag = r.char()
    if tag == "B":
        return Begin(r.uint64(), pg_timestamp(r.int64()), r.uint32())
    if tag == "C":
        return Commit(r.int8(), r.uint64(), r.uint64(), pg_timestamp(r.int64()))
    if tag == "O":
        return Origin(r.uint64(), r.string())
    if tag == "R":
        return _relation(r)
    if tag == "Y":
        return TypeInfo(r.uint32(), r.string(), r.string())
    if tag == "I":
        relation_id = r.uint32()
        if (marker := r.char()) != "N":
            raise PgoutputError(f"insert into relation {relation_id}: expected 'N', got {marker!r}")
        return Insert(relation_id, r.tuple_data())
    if tag == "U":
        return _update(r)
    if tag == "D":
        relation_id = r.uint32()
        kind = r.char()
        if kind not in ("K", "O"):
            raise PgoutputError(
                f"delete from relation {relation_id}: expected K or O, got {kind!r}"
            )
        return Delete(relation_id, kind, r.tuple_data())
    if tag == "T":
        count = r.int32()
        options = r.int8()
        return Truncate(tuple(r.uint32() for _ in range(count)), options)
    if tag == "M":
        flags = r.int8()
        lsn = r.uint64()
        prefix = r.string()
        return LogicalMessage(bool(flags & 1), lsn, prefix, r.raw(r.int32()))
    raise PgoutputError(
        f"unknown pgoutput message type {tag!r}; this decoder speaks protocol version 1 "
        "(start replication with proto_version '1')"
    )


# --------------------------------------------------------------------------- values


def _timestamptz(text: str) -> Any:
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        return text  # infinity, BC dates: keep the text


def _timestamp(text: str) -> Any:
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        return text


def _date(text: str) -> Any:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return text


_CONVERTERS: dict[int, Callable[[str], Any]] = {
    16: lambda t: t == "t",  # bool
    20: int,  # int8
    21: int,  # int2
    23: int,  # int4
    26: int,  # oid
    700: float,  # float4
    701: float,  # float8
    1700: decimal.Decimal,  # numeric
    1184: _timestamptz,  # timestamptz (needs DateStyle ISO on the replication connection)
    1114: _timestamp,  # timestamp
    1082: _date,  # date
    114: json.loads,  # json
    3802: json.loads,  # jsonb
    2950: uuid.UUID,  # uuid
}


def convert_text(type_oid: int, text: str) -> Any:
    """A column's text form -> the Python value psycopg would give for common types.

    Integers, bool, floats, numeric (Decimal), timestamps, dates, json/jsonb and uuid are
    converted; other types stay text. Assumes ``DateStyle=ISO`` (the consumer sets it).
    """
    converter = _CONVERTERS.get(type_oid)
    return text if converter is None else converter(text)


# --------------------------------------------------------------------------- decoder


@dataclass
class Transaction:
    """One committed transaction's row changes, handed over at its Commit."""

    xid: int
    commit_lsn: int
    end_lsn: int
    commit_ts: float
    events: list[ChangeEvent] = field(default_factory=list)


@dataclass
class _Pending:
    begin: Begin
    changes: list[tuple[Insert | Update | Delete, int]] = field(default_factory=list)


class PgoutputDecoder:
    """Stateful pgoutput decoder: relations by id, the open transaction's changes.

    ``key_columns`` maps ``schema.table`` (or ``table``) to its primary key columns; without
    an entry the columns flagged as replica identity are the key (with REPLICA IDENTITY FULL
    pgoutput flags *every* column, so pass the primary key). ``tables`` limits the events to
    those tables (the publication normally does that already).
    """

    def __init__(
        self,
        *,
        key_columns: Mapping[str, Sequence[str]] | None = None,
        tables: Sequence[str] | None = None,
        connector: str = "pgoutput",
    ) -> None:
        self.relations: dict[int, Relation] = {}
        self.types: dict[int, TypeInfo] = {}
        self.key_columns = {k: tuple(v) for k, v in (key_columns or {}).items()}
        self.tables = set(tables) if tables else None
        self.connector = connector
        self.truncates: list[tuple[Truncate, int]] = []
        self._open: _Pending | None = None

    def feed(
        self, payload: bytes, lsn: int = 0, observed_ts: float | None = None
    ) -> Transaction | None:
        """Decode one message; returns the whole transaction when ``payload`` is its Commit.

        ``lsn`` is where the message's WAL record starts (the XLogData ``data_start``); it
        becomes ``source["lsn"]`` of a row change. ``observed_ts`` is stamped on the events.
        """
        message = decode_message(payload)
        if isinstance(message, Begin):
            self._open = _Pending(message)
        elif isinstance(message, Relation):
            self.relations[message.relation_id] = message
        elif isinstance(message, TypeInfo):
            self.types[message.type_oid] = message
        elif isinstance(message, Insert | Update | Delete):
            if self._open is None:
                raise PgoutputError(f"row change at LSN {format_lsn(lsn)} outside a transaction")
            self._open.changes.append((message, lsn))
        elif isinstance(message, Truncate):
            self.truncates.append((message, lsn))
        elif isinstance(message, Commit):
            return self._commit(message, observed_ts)
        return None

    def _commit(self, commit: Commit, observed_ts: float | None) -> Transaction:
        pending, self._open = self._open, None
        if pending is None:
            raise PgoutputError(f"commit at LSN {format_lsn(commit.commit_lsn)} without a begin")
        tx = Transaction(
            xid=pending.begin.xid,
            commit_lsn=commit.commit_lsn,
            end_lsn=commit.end_lsn,
            commit_ts=commit.commit_ts,
        )
        for change, lsn in pending.changes:
            event = self._event(change, lsn, tx, observed_ts)
            if event is not None:
                tx.events.append(event)
        return tx

    def _event(
        self,
        change: Insert | Update | Delete,
        lsn: int,
        tx: Transaction,
        observed_ts: float | None,
    ) -> ChangeEvent | None:
        relation = self.relations.get(change.relation_id)
        if relation is None:
            raise PgoutputError(
                f"change for relation id {change.relation_id} before its Relation message"
            )
        if self.tables is not None and not (
            relation.qualified_name in self.tables or relation.name in self.tables
        ):
            return None
        if isinstance(change, Insert):
            op, before, after = "c", None, self._row(relation, change.new)
        elif isinstance(change, Update):
            before = self._old(relation, change.old_kind, change.old)
            after = self._row(relation, change.new, fill_from=before)
            op = "u"
        else:
            op, before, after = "d", self._old(relation, change.old_kind, change.old), None
        image = after if after is not None else before
        assert image is not None
        keys = self._keys(relation)
        missing = [k for k in keys if k not in image]
        if missing:
            raise PgoutputError(
                f"{relation.qualified_name}: key column(s) {missing} not in the row image; "
                "is the table's REPLICA IDENTITY NOTHING?"
            )
        return ChangeEvent(
            op=op,  # type: ignore[arg-type]
            key=tuple(image[k] for k in keys),
            before=before,
            after=after,
            source={
                "connector": self.connector,
                "lsn": lsn,
                "lsn_text": format_lsn(lsn),
                "commit_lsn": tx.commit_lsn,
                "end_lsn": tx.end_lsn,
                "xid": tx.xid,
                "schema": relation.namespace,
                "table": relation.name,
                "replica_identity": relation.replica_identity,
            },
            commit_ts=tx.commit_ts,
            observed_ts=observed_ts,
        )

    def _keys(self, relation: Relation) -> tuple[str, ...]:
        for name in (relation.qualified_name, relation.name):
            if name in self.key_columns:
                return self.key_columns[name]
        return tuple(c.name for c in relation.columns if c.identity)

    def _row(
        self,
        relation: Relation,
        values: tuple[ColumnValue, ...],
        *,
        fill_from: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        if len(values) != len(relation.columns):
            raise PgoutputError(
                f"{relation.qualified_name}: tuple has {len(values)} columns, the Relation "
                f"message {len(relation.columns)}"
            )
        row: dict[str, Any] = {}
        for column, (kind, raw) in zip(relation.columns, values, strict=True):
            if kind == "n":
                row[column.name] = None
            elif kind == "u":
                old = (fill_from or {}).get(column.name, UNCHANGED_TOAST)
                row[column.name] = old
            elif kind == "b":
                row[column.name] = raw
            else:
                assert raw is not None
                row[column.name] = convert_text(column.type_oid, raw.decode("utf-8"))
        return row

    def _old(
        self, relation: Relation, kind: str | None, values: tuple[ColumnValue, ...] | None
    ) -> dict[str, Any] | None:
        """The before-image: the whole old row (``O``), only the identity columns (``K``), or
        None when the server sent no old tuple (REPLICA IDENTITY DEFAULT, key unchanged)."""
        if kind is None or values is None:
            return None
        row = self._row(relation, values)
        if kind == "K":
            identity = {c.name for c in relation.columns if c.identity}
            return {k: v for k, v in row.items() if k in identity}
        return row
