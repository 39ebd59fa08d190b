"""What passes between the steps of features/pipelines/lakehouse_sinks.feature.

The pipeline's source table with its Debezium connector (:class:`CapturedTable`) and its sink
worker (:class:`Sink`). The sentences are in ``steps/pipelines_sources.py``,
``steps/pipelines_sinks.py`` and ``steps/pipelines_faults.py``; this module sorts before them,
so it is loaded (with assertion rewriting) before they import it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cdc_support.kafka.connector import DebeziumConnector
from cdc_support.source_table import SourceTable
from pytest_cdc.fixtures.sinks import KillRecord, SinkWorkerProcess

APPLY_TIMEOUT = 180.0
"""Seconds the sink worker gets to apply what the source wrote."""


@dataclass(frozen=True)
class CapturedTable:
    """A source table and the Debezium connector that captures it."""

    table: SourceTable
    connector: DebeziumConnector

    @property
    def topic(self) -> str:
        """The Debezium topic of the table."""
        return self.connector.topic(self.table.name)

    def __repr__(self) -> str:
        return f"{self.table!r} captured by {self.connector!r}"


@dataclass
class Sink:
    """The scenario's sink worker and table, and the kills it went through."""

    worker: SinkWorkerProcess
    label: str
    kills: list[KillRecord] = field(default_factory=list)

    def __repr__(self) -> str:
        return f"{self.label} table written by {self.worker!r}"
