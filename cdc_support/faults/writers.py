"""Writers of the sequenced table (:mod:`cdc_support.faults.workload`), one per database.

Each writes one operation per autocommit statement over one connection it reopens when asked
(the database restarted or was killed), reads a row's ``seq`` back to resolve an operation
whose commit is unknown, and reads the whole table over a connection of its own.
"""

from __future__ import annotations

import contextlib
from typing import Any, ClassVar, Literal, Protocol

import psycopg
import pymysql
from psycopg import sql

from cdc_support.mysql.source import MySqlAddress, connect, parse_dsn

__all__ = ["Code", "MySqlWriter", "PostgresWriter", "SequencedWriter", "WriteMismatch", "payload"]

Code = Literal["c", "u", "d"]


class WriteMismatch(RuntimeError):
    """A write changed another number of rows than one: the table is not what the log says."""


class SequencedWriter(Protocol):
    """How one database writes the sequenced table; reconnects when asked to."""

    label: str
    table: str
    transient: tuple[type[BaseException], ...]
    """Errors that mean the connection or the server went away (retry on a new one)."""

    def create(self) -> None:
        """Create the table (if missing)."""
        ...

    def preload(self, rows: int) -> None:
        """Insert ids 1..``rows`` with ``seq = 0`` in one statement (rows that exist before
        capture starts, for snapshots)."""
        ...

    def connect(self) -> None:
        """Open the writing connection, unless one is open."""
        ...

    def close(self) -> None:
        """Drop the writing connection, quietly (it may be broken)."""
        ...

    def write(self, op: Code, key: int, seq: int) -> None:
        """One operation, in its own transaction; WriteMismatch unless it changed one row."""
        ...

    def seq_of(self, key: int) -> int | None:
        """The row's ``seq`` over the writing connection, or None when there is no row."""
        ...

    def rows(self) -> dict[tuple[int], int]:
        """The table now, ``{(id,): seq}``, over a connection of its own."""
        ...


PRELOADED = "preloaded"
"""The payload of a preloaded row (``seq`` 0)."""


def payload(seq: int) -> str:
    """The payload operation ``seq`` writes."""
    return f"operation {seq}"


class _SqlWriter:
    """The statements both dialects share (``%s`` placeholders); subclasses run them."""

    label: str
    transient: ClassVar[tuple[type[BaseException], ...]]

    def __init__(self, table: str) -> None:
        self.table = table
        name = self.quote(table)
        self._writes: dict[str, str] = {
            "c": f"INSERT INTO {name} (id, seq, payload) VALUES (%s, %s, %s)",
            "u": f"UPDATE {name} SET seq = %s, payload = %s WHERE id = %s",
            "d": f"DELETE FROM {name} WHERE id = %s",
        }
        self._select = f"SELECT seq FROM {name} WHERE id = %s"
        self._select_all = f"SELECT id, seq FROM {name}"

    def quote(self, identifier: str) -> str:
        """An identifier as the dialect spells it."""
        raise NotImplementedError

    def _execute(self, statement: str, args: tuple[Any, ...]) -> int:
        """Run a write over the writing connection; the rows it changed."""
        raise NotImplementedError

    def _fetch(self, statement: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        """Run a query over the writing connection; its rows."""
        raise NotImplementedError

    def _fetch_apart(self, statement: str) -> list[tuple[Any, ...]]:
        """Run a query over a connection of its own; its rows."""
        raise NotImplementedError

    def write(self, op: Code, key: int, seq: int) -> None:
        """One operation, in its own transaction; WriteMismatch unless it changed one row."""
        if op == "c":
            args: tuple[Any, ...] = (key, seq, payload(seq))
        elif op == "u":
            args = (seq, payload(seq), key)
        else:
            args = (key,)
        changed = self._execute(self._writes[op], args)
        if changed != 1:
            raise WriteMismatch(
                f"{self!r}: operation {seq} ({op} of id {key}) changed {changed} rows, not 1"
            )

    def seq_of(self, key: int) -> int | None:
        """The row's ``seq`` over the writing connection, or None when there is no row."""
        rows = self._fetch(self._select, (key,))
        return int(rows[0][0]) if rows else None

    def rows(self) -> dict[tuple[int], int]:
        """The table now, ``{(id,): seq}``, over a connection of its own."""
        return {(int(key),): int(seq) for key, seq in self._fetch_apart(self._select_all)}

    def __repr__(self) -> str:
        return f"{self.label} {self.table} table"


class PostgresWriter(_SqlWriter):
    """Writes over one autocommit psycopg connection to ``dsn``, with prepared statements."""

    label = "PostgreSQL"
    transient = (psycopg.OperationalError, OSError)

    def __init__(self, dsn: str, table: str = "sequenced", *, connect_timeout: int = 5) -> None:
        super().__init__(table)
        self.dsn = dsn
        self.connect_timeout = connect_timeout
        self._conn: psycopg.Connection[Any] | None = None
        self._cur: psycopg.Cursor[Any] | None = None

    def quote(self, identifier: str) -> str:
        """A double-quoted identifier."""
        return sql.Identifier(identifier).as_string()

    def _open(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.dsn, autocommit=True, connect_timeout=self.connect_timeout)

    def create(self) -> None:
        """Create the table (if missing), its old rows whole in the WAL (REPLICA IDENTITY FULL)."""
        name = self.quote(self.table)
        with self._open() as conn:
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {name} "  # type: ignore[arg-type]
                "(id BIGINT PRIMARY KEY, seq BIGINT NOT NULL, payload TEXT NOT NULL)"
            )
            conn.execute(f"ALTER TABLE {name} REPLICA IDENTITY FULL")  # type: ignore[arg-type]

    def preload(self, rows: int) -> None:
        """Ids 1..``rows`` with ``seq = 0``, from generate_series."""
        with self._open() as conn:
            conn.execute(
                f"INSERT INTO {self.quote(self.table)} (id, seq, payload) "  # type: ignore[arg-type]
                f"SELECT g, 0, '{PRELOADED}' FROM generate_series(1, %s) AS g",
                (rows,),
            )

    def connect(self) -> None:
        """Open the writing connection, unless one is open."""
        if self._conn is None:
            conn = self._open()
            self._conn, self._cur = conn, conn.cursor()

    def close(self) -> None:
        """Drop the writing connection, quietly."""
        conn, self._conn, self._cur = self._conn, None, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error, OSError):
                conn.close()

    def _cursor(self) -> psycopg.Cursor[Any]:
        if self._cur is None:
            raise psycopg.OperationalError(f"{self!r}: not connected")
        return self._cur

    def _execute(self, statement: str, args: tuple[Any, ...]) -> int:
        cur = self._cursor()
        cur.execute(statement, args, prepare=True)  # type: ignore[arg-type]
        return cur.rowcount

    def _fetch(self, statement: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        return self._cursor().execute(statement, args).fetchall()  # type: ignore[arg-type]

    def _fetch_apart(self, statement: str) -> list[tuple[Any, ...]]:
        with self._open() as conn:
            return conn.execute(statement).fetchall()  # type: ignore[arg-type]


class MySqlWriter(_SqlWriter):
    """Writes over one autocommit PyMySQL connection to a MySQL/MariaDB ``address``."""

    label = "MariaDB"
    transient = (pymysql.err.OperationalError, pymysql.err.InterfaceError, OSError)

    def __init__(
        self, address: MySqlAddress | str, table: str = "sequenced", *, label: str = "MariaDB"
    ) -> None:
        super().__init__(table)
        self.address = parse_dsn(address) if isinstance(address, str) else address
        self.label = label
        self._conn: pymysql.Connection | None = None
        self._cur: Any = None

    def quote(self, identifier: str) -> str:
        """A backquoted identifier."""
        return "`" + identifier.replace("`", "``") + "`"

    def create(self) -> None:
        """Create the table (if missing)."""
        with connect(self.address) as conn, conn.cursor() as cur:
            cur.execute(
                f"CREATE TABLE IF NOT EXISTS {self.quote(self.table)} (id BIGINT PRIMARY KEY, "
                "seq BIGINT NOT NULL, payload VARCHAR(64) NOT NULL) ENGINE=InnoDB"
            )

    def preload(self, rows: int) -> None:
        """Ids 1..``rows`` with ``seq = 0``, from MariaDB's sequence engine (``seq_1_to_N``)."""
        with connect(self.address) as conn, conn.cursor() as cur:
            cur.execute(
                f"INSERT INTO {self.quote(self.table)} (id, seq, payload) "
                f"SELECT seq, 0, '{PRELOADED}' FROM seq_1_to_{int(rows)}"
            )
            conn.commit()

    def connect(self) -> None:
        """Open the writing connection, unless one is open."""
        if self._conn is None:
            conn = connect(self.address)
            self._conn, self._cur = conn, conn.cursor()

    def close(self) -> None:
        """Drop the writing connection, quietly."""
        conn, self._conn, self._cur = self._conn, None, None
        if conn is not None:
            with contextlib.suppress(pymysql.err.Error, OSError):
                conn.close()

    def _cursor(self) -> Any:
        if self._cur is None:
            raise pymysql.err.InterfaceError(0, f"{self!r}: not connected")
        return self._cur

    def _execute(self, statement: str, args: tuple[Any, ...]) -> int:
        return int(self._cursor().execute(statement, args))

    def _fetch(self, statement: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        cur = self._cursor()
        cur.execute(statement, args)
        return list(cur.fetchall())

    def _fetch_apart(self, statement: str) -> list[tuple[Any, ...]]:
        with connect(self.address) as conn, conn.cursor() as cur:
            cur.execute(statement)
            return list(cur.fetchall())
