"""Decode a pgoutput stream into transactions of :class:`~cdc_support.events.ChangeEvent`\\ s.

:class:`PgoutputDecoder` keeps the Relation messages it has seen and buffers a transaction's
row changes until its Commit, then returns them as change events with the commit time. The
bytes are read by :mod:`.pgoutput_parser` into the messages of :mod:`.pgoutput_messages`;
column values are converted by :mod:`.pgoutput_values`. No connection: bytes in, events out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cdc_support.events import ChangeEvent
from cdc_support.postgres.pgoutput_messages import (
    Begin,
    ColumnValue,
    Commit,
    Delete,
    Insert,
    PgoutputError,
    Relation,
    Truncate,
    TypeInfo,
    Update,
    format_lsn,
)
from cdc_support.postgres.pgoutput_parser import decode_message
from cdc_support.postgres.pgoutput_values import convert_text

__all__ = ["UNCHANGED_TOAST", "PgoutputDecoder", "Transaction"]

UNCHANGED_TOAST = "__unchanged_toast_value__"
"""Stands for a TOASTed column an update did not change (pgoutput does not send it)."""


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
