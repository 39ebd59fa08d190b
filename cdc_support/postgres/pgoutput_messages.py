"""The pgoutput logical replication messages (protocol version 1), as Python values.

What :mod:`.pgoutput_parser` reads from the bytes and :mod:`.pgoutput` assembles into
transactions; plus the LSN and timestamp forms the messages use. The layouts follow the
PostgreSQL documentation, "Logical Replication Message Formats":

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
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

__all__ = [
    "Begin",
    "Column",
    "ColumnValue",
    "Commit",
    "Delete",
    "Insert",
    "LogicalMessage",
    "Message",
    "Origin",
    "PgoutputError",
    "Relation",
    "Truncate",
    "TypeInfo",
    "Update",
    "format_lsn",
    "parse_lsn",
    "pg_timestamp",
]

PG_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
_PG_EPOCH_SECONDS = PG_EPOCH.timestamp()

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
