"""Bytes -> pgoutput messages: one message (the payload of one XLogData) at a time.

Integers are big-endian, strings NUL-terminated (see :mod:`.pgoutput_messages` for each
message's layout). A message that cannot be read raises
:class:`~.pgoutput_messages.PgoutputError` saying what and at which offset.
"""

from __future__ import annotations

import struct
from typing import Any

from cdc_support.postgres.pgoutput_messages import (
    REPLICA_IDENTITY,
    Begin,
    Column,
    ColumnValue,
    Commit,
    Delete,
    Insert,
    LogicalMessage,
    Message,
    Origin,
    PgoutputError,
    Relation,
    Truncate,
    TypeInfo,
    Update,
    pg_timestamp,
)

__all__ = ["decode_message"]


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
