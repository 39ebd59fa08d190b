"""Sequence-numbered single-row operations that survive the source database dying.

The table is ``<name>(id BIGINT PRIMARY KEY, seq BIGINT NOT NULL, payload)``. Operation n
(1..count) inserts a row with a new id (ids from 1 upward, never reused), updates a live row
or deletes one, drawn from a seeded mix (:data:`cdc_support.workload.DEFAULT_MIX`); an insert
or update sets ``seq = n``. So every change has an identity a consumer's output is audited
by (:class:`cdc_support.checks.delivery.DeliveryAudit`): (key, "c"|"u", seq) or (key, "d").

:class:`SequencedWorkload` writes them in a thread, each in its own autocommit transaction,
through a :class:`SequencedWriter` (:class:`PostgresWriter`, :class:`MySqlWriter`). When an
operation fails with a connection error (the database restarting or killed), it is retried on
a new connection until ``outage_timeout``. An error once the statement was sent leaves the
commit unknown: the row is read back first (``seq == n`` for c/u, no row for d) and the
operation is logged as committed or written again. The log of committed operations is exact,
and each outage is recorded as (first failure, first success after it), in epoch seconds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cdc_support.checks.delivery import OP_CODES
from cdc_support.faults.writers import (
    Code,
    MySqlWriter,
    PostgresWriter,
    SequencedWriter,
    WriteMismatch,
)
from cdc_support.workload import DEFAULT_MIX, EcommerceGenerator, choose_op, normalised_mix

__all__ = [
    "MySqlWriter",
    "OutageTooLong",
    "PlannedOp",
    "PostgresWriter",
    "SequencedOp",
    "SequencedWorkload",
    "SequencedWriter",
    "WriteMismatch",
    "plan_operations",
]

Outage = tuple[float, float]


@dataclass(frozen=True, slots=True)
class SequencedOp:
    """One committed operation: its number (the ``seq`` it wrote), kind, key and the client's
    commit time (epoch seconds; for an outcome resolved by reading back, the time the error
    was seen, which the commit preceded)."""

    seq: int
    op: Code
    key: tuple[int]
    committed_at: float


@dataclass(frozen=True, slots=True)
class PlannedOp:
    """An operation to write: number, kind and row id."""

    seq: int
    op: Code
    id: int


def plan_operations(
    count: int, seed: int, mix: Sequence[float] = DEFAULT_MIX, *, preloaded: int = 0
) -> list[PlannedOp]:
    """The ``count`` operations of a seed: new ids from ``preloaded + 1`` upward, updates and
    deletes on live rows (the ``preloaded`` ids 1.. among them) picked by the seeded random
    stream, a deleted id never used again."""
    p_insert, p_update, _ = normalised_mix(mix)
    gen = EcommerceGenerator(seed)
    live: list[int] = list(range(1, preloaded + 1))
    plan: list[PlannedOp] = []
    next_id = preloaded + 1
    for seq in range(1, count + 1):
        kind = choose_op(gen, p_insert, p_update, has_rows=bool(live))
        if kind == "insert":
            key, next_id = next_id, next_id + 1
            live.append(key)
        else:
            index = gen.random.randrange(len(live))
            key = live[index]
            if kind == "delete":
                live[index] = live[-1]
                live.pop()
        plan.append(PlannedOp(seq, OP_CODES[kind], key))  # type: ignore[arg-type]
    return plan


class OutageTooLong(RuntimeError):
    """The database did not accept an operation again within ``outage_timeout``."""


class _Stopped(Exception):
    """stop() was called while an operation waited for the database."""


class SequencedWorkload:
    """``count`` sequence-numbered operations written through ``writer`` in a thread.

    ``ops`` is the log of committed operations (in order), ``done`` how many there are,
    ``outages`` the windows the database refused them. A failure in the thread (an outage
    longer than ``outage_timeout``, an error that is no connection error) ends it and is
    raised again by :meth:`join`.
    """

    def __init__(
        self,
        writer: SequencedWriter,
        count: int,
        seed: int,
        *,
        mix: Sequence[float] = DEFAULT_MIX,
        outage_timeout: float = 120.0,
        preloaded: int = 0,
        rate: float | None = None,
    ) -> None:
        self.writer, self.count, self.seed = writer, count, seed
        self.outage_timeout = outage_timeout
        self.preloaded = preloaded
        """Rows 1..preloaded the table held (seq 0) before the workload; it touches them too."""
        self.plan = plan_operations(count, seed, mix, preloaded=preloaded)
        if rate is not None and rate <= 0:
            raise ValueError(f"rate must be operations per second > 0, not {rate}")
        self.rate = rate
        """Operations per second at most (None: as fast as the database commits them)."""
        self.ops: list[SequencedOp] = []
        self.outages: list[Outage] = []
        self.unknown_outcomes: list[tuple[int, bool]] = []
        """Operations whose commit was unknown after an error, and whether the row read back
        showed it committed (else it was written again)."""
        self.failure: BaseException | None = None
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sequenced-workload", daemon=True)

    def __repr__(self) -> str:
        return f"sequenced workload {self.done}/{self.count} on {self.writer!r}"

    @property
    def done(self) -> int:
        """Operations committed so far."""
        return len(self.ops)

    @property
    def seconds(self) -> float:
        """How long it has written (until now, or until it ended)."""
        if self.started_at is None:
            return 0.0
        return (self.finished_at or time.time()) - self.started_at

    def start(self) -> SequencedWorkload:
        """Connect (a wrong address fails here, in the caller), then write in the thread."""
        self.writer.connect()
        self.started_at = time.time()
        self._thread.start()
        return self

    def passed(self, operation: int) -> Callable[[int], bool]:
        """A ``done`` predicate for polling: past ``operation``, or failed."""
        return lambda done: done >= operation or self.failure is not None

    def join(self, timeout: float) -> None:
        """Wait for the last operation (at most ``timeout`` seconds); raise what failed."""
        self._thread.join(timeout)
        if self.failure is not None:
            raise self.failure
        if self._thread.is_alive():
            raise TimeoutError(f"{self!r} did not finish within {timeout}s")

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the operation in progress and wait for the thread (teardown)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def expected_rows(self) -> dict[tuple[int], int]:
        """The table the committed operations leave, ``{(id,): seq}`` (preloaded rows: 0)."""
        rows: dict[tuple[int], int] = {(key,): 0 for key in range(1, self.preloaded + 1)}
        for op in self.ops:
            if op.op == "d":
                rows.pop(op.key, None)
            else:
                rows[op.key] = op.seq
        return rows

    def _run(self) -> None:
        try:
            for index, planned in enumerate(self.plan):
                if self.rate is not None:  # pace: operation i starts at i / rate seconds
                    ahead = (self.started_at or 0.0) + index / self.rate - time.time()
                    if ahead > 0 and self._stop.wait(ahead):
                        break
                if self._stop.is_set():
                    break
                self.ops.append(self._commit(planned))
        except _Stopped:
            pass
        except BaseException as exc:  # raised again by join()
            self.failure = exc
        finally:
            self.finished_at = time.time()
            self.writer.close()

    def _commit(self, planned: PlannedOp) -> SequencedOp:
        """Write one operation; on a connection error, :meth:`_survive`."""
        try:
            self.writer.write(planned.op, planned.id, planned.seq)
        except self.writer.transient as exc:
            return self._survive(planned, exc)
        return SequencedOp(planned.seq, planned.op, (planned.id,), time.time())

    def _survive(self, planned: PlannedOp, error: BaseException) -> SequencedOp:
        """Reconnect until the operation is known committed: read back an unknown outcome,
        write again one that did not commit; OutageTooLong after ``outage_timeout``."""
        failed_at = time.time()
        deadline = time.monotonic() + self.outage_timeout
        unknown, delay = True, 0.05  # the failed write was sent: it may have committed
        while True:
            self.writer.close()
            if time.monotonic() >= deadline:
                raise OutageTooLong(
                    f"{self.writer!r} refused operation {planned.seq} for "
                    f"{self.outage_timeout:g}s (outage_timeout), last error "
                    f"{type(error).__name__}: {str(error).strip()}; is the database up?"
                ) from error
            if self._stop.wait(delay):
                raise _Stopped
            delay = min(delay * 2, 1.0)
            sent = False
            try:
                self.writer.connect()
                if unknown:
                    committed = self._committed(planned)
                    self.unknown_outcomes.append((planned.seq, committed))
                    if committed:
                        self.outages.append((failed_at, time.time()))
                        return SequencedOp(planned.seq, planned.op, (planned.id,), failed_at)
                    unknown = False
                sent = True
                self.writer.write(planned.op, planned.id, planned.seq)
            except self.writer.transient as exc:
                unknown, error = unknown or sent, exc
                continue
            committed_at = time.time()
            self.outages.append((failed_at, committed_at))
            return SequencedOp(planned.seq, planned.op, (planned.id,), committed_at)

    def _committed(self, planned: PlannedOp) -> bool:
        """Whether the operation committed, read from its row."""
        seq = self.writer.seq_of(planned.id)
        return seq is None if planned.op == "d" else seq == planned.seq
