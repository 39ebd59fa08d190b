"""What a schema-change scenario holds: the source table and every path that reads it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cdc_support.capture import CaptureApproach
from cdc_support.kafka.topics import TopicReader
from cdc_support.schema_changes.cases import Case
from cdc_support.schema_changes.observed import FieldTypes
from cdc_support.schema_changes.source import AccountsTable

__all__ = ["SchemaPipeline"]


@dataclass
class SchemaPipeline:
    """The scenario's source table and every path reading it."""

    table: AccountsTable
    topic: str
    debezium: TopicReader
    field_types: FieldTypes
    reader_name: str
    reader: CaptureApproach
    sinks: dict[str, Any]
    types_before: dict[str, dict[str, str]] = field(default_factory=dict)
    case: Case | None = None
    matrix: dict[str, str] = field(default_factory=dict)
    refused: dict[str, int] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"{self.table!r} → Debezium, {self.reader_name}, Delta and Iceberg"

    def changed(self) -> Case:
        """The case the When step applied."""
        assert self.case is not None, "no schema change was applied yet"
        return self.case
