"""One source table, whatever database holds it: the :class:`SourceTable` protocol.

Scenarios write to their generated table through this protocol, whichever database holds it;
:mod:`cdc_support.postgres.source_table` and :mod:`cdc_support.mysql.source_table` implement
it, one class each. :class:`WriteLog` is the bookkeeping
both share (what was written, so how many change events a capture must deliver), and
:class:`BackgroundWorkload` runs a workload in a thread while a scenario does something else.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from cdc_support.workload import EcommerceGenerator, Operation

__all__ = ["BackgroundWorkload", "Rows", "SourceTable", "WriteLog", "tally"]

Rows = dict[tuple[Any, ...], dict[str, Any]]


@runtime_checkable
class SourceTable(Protocol):
    """A generated table in a source database, and what was written to it."""

    label: str
    """The database as the features name it (``PostgreSQL``, ``MariaDB``)."""
    name: str
    key: tuple[str, ...]
    precise_commit_times: bool
    """Whether change events carry the commit time to the microsecond (PostgreSQL's WAL does;
    MySQL's binlog has whole seconds, so there the client's commit time is the reference)."""
    seeded: int
    workload: list[Operation]
    other_changes: int

    @property
    def change_events(self) -> int:
        """Change events the table has produced so far (one per row written)."""
        ...

    def create(self) -> None:
        """Create the table, empty (nothing happens if it exists)."""
        ...

    def seed(self, count: int, seed: int) -> list[dict[str, Any]]:
        """Create the table with ``count`` generated rows (before capture starts); the rows."""
        ...

    def run_workload(self, gen: EcommerceGenerator, count: int) -> list[Operation]:
        """``count`` single-row transactions (insert/update/delete), kept in ``workload``."""
        ...

    def rows(self) -> Rows:
        """The table now, by key."""
        ...

    def execute(self, statement: str, args: tuple[Any, ...] = ()) -> None:
        """One statement in its own transaction."""
        ...

    def add_column(self, column: str) -> None:
        """ALTER TABLE ... ADD COLUMN (nullable text)."""
        ...

    def insert_row(self, row: dict[str, Any]) -> None:
        """INSERT one row in its own transaction."""
        ...

    def update_row(self, key: tuple[Any, ...], values: dict[str, Any]) -> None:
        """UPDATE the row of ``key`` in its own transaction."""
        ...


class WriteLog:
    """What a source table wrote, and the row statements built from ``execute``.

    Implementations set ``label``, ``name``, ``key`` and ``precise_commit_times``, and
    provide ``execute`` and ``quote``; this class counts the rows written.
    """

    label: str
    name: str
    key: tuple[str, ...]

    def __init__(self) -> None:
        self.seeded = 0
        self.workload: list[Operation] = []
        self.other_changes = 0

    def __repr__(self) -> str:
        return f"{self.label} {self.name} table"

    @property
    def change_events(self) -> int:
        """Change events the table has produced so far (one per row written)."""
        return self.seeded + len(self.workload) + self.other_changes

    def execute(self, statement: str, args: tuple[Any, ...] = ()) -> None:
        """One statement in its own transaction (the database's own)."""
        raise NotImplementedError

    def quote(self, identifier: str) -> str:
        """An identifier as the database's SQL spells it."""
        raise NotImplementedError

    def insert_row(self, row: dict[str, Any]) -> None:
        """INSERT one row in its own transaction."""
        columns = list(row)
        self.execute(
            f"INSERT INTO {self.quote(self.name)} ({', '.join(map(self.quote, columns))}) "
            f"VALUES ({', '.join(['%s'] * len(columns))})",
            tuple(row[c] for c in columns),
        )
        self.other_changes += 1

    def update_row(self, key: tuple[Any, ...], values: dict[str, Any]) -> None:
        """UPDATE the row of ``key`` in its own transaction."""
        assignments = ", ".join(f"{self.quote(c)} = %s" for c in values)
        where = " AND ".join(f"{self.quote(c)} = %s" for c in self.key)
        self.execute(
            f"UPDATE {self.quote(self.name)} SET {assignments} WHERE {where}",
            (*values.values(), *key),
        )
        self.other_changes += 1


def tally(ops: list[Operation]) -> dict[str, int]:
    """Operations by kind (insert / update / delete)."""
    counts: dict[str, int] = {}
    for op in ops:
        counts[op.op] = counts.get(op.op, 0) + 1
    return counts


class BackgroundWorkload:
    """A workload of ``count`` operations written in a thread, ``step`` at a time.

    Once past operation ``hold_at`` the writer waits for :meth:`release` (at most
    ``hold_timeout`` seconds), so what the scenario does meanwhile is sure to happen while
    the workload still runs. A failure in the thread is raised again by :meth:`join`.
    """

    def __init__(
        self,
        table: SourceTable,
        gen: EcommerceGenerator,
        count: int,
        *,
        hold_at: int,
        hold_timeout: float,
        step: int = 50,
    ) -> None:
        self.table, self.gen, self.count = table, gen, count
        self.hold_at, self.hold_timeout, self.step = hold_at, hold_timeout, step
        self.done = 0
        self.failure: BaseException | None = None
        self._released = threading.Event()
        self._thread = threading.Thread(target=self._write, name="workload", daemon=True)

    def __repr__(self) -> str:
        return f"workload {self.done}/{self.count} on {self.table!r}"

    def start(self) -> BackgroundWorkload:
        """Start writing."""
        self._thread.start()
        return self

    def _write(self) -> None:
        try:
            while self.done < self.count:
                if self.done >= self.hold_at and not self._released.wait(self.hold_timeout):
                    raise TimeoutError(
                        f"the workload waited {self.hold_timeout}s at operation {self.done} "
                        "for the scenario to release it"
                    )
                step = min(self.step, self.count - self.done)
                self.table.run_workload(self.gen, step)
                self.done += step
        except BaseException as exc:  # raised again by join()
            self.failure = exc

    def release(self) -> None:
        """Let the writer go on past ``hold_at``."""
        self._released.set()

    def passed(self, operation: int) -> Callable[[int], bool]:
        """A ``done`` predicate for polling: past ``operation``, or failed."""
        return lambda done: done >= operation or self.failure is not None

    def stop(self, timeout: float) -> None:
        """Release the writer and wait for it (at most ``timeout`` seconds)."""
        self.release()
        self._thread.join(timeout=timeout)

    def join(self, timeout: float) -> None:
        """:meth:`stop`, then raise what failed in the writer."""
        self.stop(timeout)
        if self.failure is not None:
            raise self.failure
        if self._thread.is_alive():
            raise TimeoutError(f"{self!r} did not finish within {timeout}s")
