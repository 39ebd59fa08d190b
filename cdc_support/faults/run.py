"""One fault-matrix run: which fault a sentence names, whether what was delivered is complete,
whether replaying it rebuilds the source table, and the run's row in the matrix.

The sentences of ``features/faults`` name a fault in words; :data:`FAULTS` maps each to an
action (``kill``: SIGKILL then start again; ``restart``: graceful) and the role of its target:
a stack component (``connect``, ``kafka``, the ``source`` database), the ``sink`` worker or the
native ``reader`` process.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from cdc_support.checks.delivery import AuditReport, DeliveryAudit
from cdc_support.checks.integrity import IntegrityReport, compare_tables
from cdc_support.checks.replay import rebuild_from_events
from cdc_support.events import ChangeEvent
from cdc_support.faults.workload import SequencedOp
from cdc_support.waiting import wait_until

__all__ = [
    "CONNECTOR_SETTINGS",
    "FAULTS",
    "GUARANTEES",
    "Fault",
    "fault_named",
    "rebuilt_against_source",
    "wait_complete",
]


@dataclass(frozen=True)
class Fault:
    """What a sentence asks for: ``action`` on the target playing ``role``."""

    action: str
    role: str
    short: str
    """The matrix's row label, e.g. ``kill -9 Kafka Connect``."""


FAULTS: Mapping[str, Fault] = {
    "Kafka Connect is killed with SIGKILL": Fault("kill", "connect", "kill -9 Kafka Connect"),
    "the Kafka broker is restarted": Fault("restart", "kafka", "Kafka broker restart"),
    "the Kafka broker is killed with SIGKILL": Fault("kill", "kafka", "kill -9 Kafka broker"),
    "the source database is restarted": Fault("restart", "source", "source database restart"),
    "the source database is killed with SIGKILL": Fault(
        "kill", "source", "kill -9 source database"
    ),
    "the sink worker is killed with SIGKILL": Fault("kill", "sink", "kill -9 sink worker"),
    "the reader is killed with SIGKILL": Fault("kill", "reader", "kill -9 native reader"),
}
CONNECTOR_SETTINGS: Mapping[str, Mapping[str, object]] = {
    "PostgreSQL": {},
    "MariaDB": {"connect.keep.alive.interval.ms": 5000},
}
"""What the fault scenarios set on a Debezium connector beyond the factory's defaults, by
source. The MariaDB connector notices a lost binlog connection only when its keep-alive
thread checks, every ``connect.keep.alive.interval.ms`` (60 s by default: changes committed
after a database restart were delivered again 116 s later); the scenarios check every 5 s."""
GUARANTEES = ("at-least-once", "exactly-once")
"""What an Examples row may promise: duplicates allowed (each a replay), or none at all."""


def fault_named(phrase: str) -> Fault:
    """The fault a sentence names; ValueError listing the known ones otherwise."""
    try:
        return FAULTS[phrase]
    except KeyError:
        known = "; ".join(FAULTS)
        raise ValueError(f"unknown fault {phrase!r}; the feature may name: {known}") from None


def wait_complete(
    ops: list[SequencedOp],
    delivered: Callable[[], list[ChangeEvent]],
    *,
    timeout: float,
    what: str,
) -> tuple[AuditReport, list[ChangeEvent]]:
    """Poll ``delivered`` until every committed op in ``ops`` was delivered at least once;
    the final audit and events. WaitTimeout says how many are still missing."""
    audit = DeliveryAudit(ops)

    def probe() -> tuple[AuditReport, list[ChangeEvent]]:
        events = delivered()
        return audit.audit(events), events

    return wait_until(
        probe,
        done=lambda seen: not seen[0].lost,
        timeout=timeout,
        interval=1.0,
        expected=f"{what} to deliver all {len(ops)} committed changes",
        describe=lambda seen: seen[0].summary(examples=3),
    )


def rebuilt_against_source(
    events: Iterable[ChangeEvent], source: Mapping[tuple[int], int]
) -> IntegrityReport:
    """Replay ``events`` in delivery order (a repeated change rewrites the same row) and
    compare the rebuilt ``{key: seq}`` with the source table's."""
    rebuilt = rebuild_from_events(events)
    actual = {key: {"seq": int(row["seq"])} for key, row in rebuilt.items()}
    expected = {key: {"seq": seq} for key, seq in source.items()}
    return compare_tables(expected, actual)
