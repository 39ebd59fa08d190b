"""The one interface every CDC approach offers, whatever the source database.

A scenario (or a script) starts an approach on a table, writes, reads what it delivered,
stops and restarts it, and closes it — the same calls whatever the approach::

    approach.start()                 # first start installs what it needs on the source
    ...writes...
    events = approach.wait_events(lambda evs: len(evs) >= 3, expected="3 events", timeout=30)
    approach.stop()                  # stop consuming; the position is kept
    approach.start()                 # resume from the saved position
    approach.close()                 # stop and remove everything it installed (idempotent)

``declared`` says what the approach is documented to do; the scenarios check each claim
against a real server. PostgreSQL's approaches live in :mod:`cdc_support.postgres`, MariaDB's
in :mod:`cdc_support.mysql`.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

from cdc_support.events import ChangeEvent
from cdc_support.waiting import wait_until

__all__ = ["CaptureApproach", "Declared", "describe_events"]


@dataclass(frozen=True)
class Declared:
    """What an approach is documented to do (checked by the scenarios, shown in the report)."""

    hard_deletes: bool
    intermediate_updates: bool
    before_image: bool
    restart_without_loss: bool
    schema_change: bool
    how: str

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (for JSON attachments)."""
        return asdict(self)


class CaptureApproach(abc.ABC):
    """One way of capturing a table's changes as :class:`ChangeEvent`\\ s."""

    name: ClassVar[str]
    declared: ClassVar[Declared]

    def __init__(self, table: str, key: tuple[str, ...]) -> None:
        self.table = table
        self.key = tuple(key)

    @abc.abstractmethod
    def start(self) -> None:
        """Start (the first time: install what the approach needs) or resume consuming."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop consuming; the position is kept so ``start()`` resumes after it."""

    @abc.abstractmethod
    def delivered(self) -> list[ChangeEvent]:
        """Every change event delivered so far (across restarts), in delivery order."""

    @abc.abstractmethod
    def close(self) -> None:
        """Stop and remove from the source everything the approach installed (idempotent)."""

    def between_polls(self) -> contextlib.AbstractContextManager[None]:
        """Hold off the next poll while the block runs (a no-op for log-based approaches)."""
        return contextlib.nullcontext()

    def describe(self) -> dict[str, Any]:
        """What the report shows about this instance."""
        return {"approach": self.name, "table": self.table, "key": list(self.key)}

    def wait_events(
        self,
        done: Callable[[list[ChangeEvent]], bool],
        *,
        expected: str,
        timeout: float,
    ) -> list[ChangeEvent]:
        """Poll :meth:`delivered` until ``done(events)``; WaitTimeout naming expected vs seen."""
        return wait_until(
            self.delivered,
            done=done,
            timeout=timeout,
            interval=0.05,
            expected=f"{expected} from {self.name}",
            describe=self.progress,
        )

    def progress(self, events: list[ChangeEvent]) -> str:
        """What a timed-out wait reports as seen (an approach may add where it stands)."""
        return describe_events(events)

    def wait_count(self, count: int, *, timeout: float) -> list[ChangeEvent]:
        """Wait until at least ``count`` events were delivered."""
        return self.wait_events(
            lambda events: len(events) >= count, expected=f"{count} events", timeout=timeout
        )

    def __repr__(self) -> str:
        return self.name


def describe_events(events: list[ChangeEvent]) -> str:
    """``N events (last: c[1], u[1], ...)``: what a timed-out wait saw."""
    tail = ", ".join(f"{e.op}{list(e.key)}" for e in events[-8:])
    return f"{len(events)} events (last: {tail or 'none'})"
