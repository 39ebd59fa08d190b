"""Why a sink worker stops: each error's message names the cause and the fix, on one line."""

from __future__ import annotations

__all__ = ["SinkConfigError", "SinkConflict", "SinkError"]


class SinkError(RuntimeError):
    """The sink cannot go on; the message names the cause and the fix."""


class SinkConflict(SinkError):
    """Another writer changed the table: one writer per table (``cdc-spec sink`` exits 3)."""


class SinkConfigError(SinkError):
    """The worker was told something that cannot work (unreachable Kafka, a missing topic with
    ``--require-topic``, a table path that is a file, ``--key`` columns the records lack):
    ``cdc-spec sink`` exits 2 with the message, which names the option to change."""
