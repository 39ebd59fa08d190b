"""What a MariaDB/MySQL binlog approach adds to :class:`~cdc_support.capture.CaptureApproach`.

Row events carry no DDL, so each binlog approach keeps its own record of schema changes:
Debezium a schema history topic, the native reader a list of the DDL statements it saw.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any

from cdc_support.capture import CaptureApproach

__all__ = ["EVENT_TIMEOUT", "BinlogApproach", "SchemaChanges"]

EVENT_TIMEOUT = 60.0
"""How long a scenario waits for a binlog approach's events (seconds)."""


@dataclass(frozen=True)
class SchemaChanges:
    """DDL statements an approach recorded, and where (``source``), with the raw records."""

    source: str
    statements: list[str]
    records: list[dict[str, Any]] = field(default_factory=list, repr=False)

    def __repr__(self) -> str:
        return f"SchemaChanges({self.source}: {len(self.statements)} statements)"


class BinlogApproach(CaptureApproach):
    """A CDC approach reading a MySQL/MariaDB binlog."""

    @abc.abstractmethod
    def schema_changes(self, containing: str, *, timeout: float) -> SchemaChanges:
        """Wait until a recorded DDL statement contains ``containing``; return the matches."""
