"""PostgreSQL CDC approaches side by side, behind one interface (:class:`CaptureApproach`).

* :mod:`.logical_decoding` — native logical decoding: a Python pgoutput consumer over the
  streaming replication protocol (decoder in :mod:`.pgoutput`);
* :mod:`.trigger_audit` — row triggers writing an audit table, read by transaction snapshot;
* :mod:`.timestamp_polling` — ``updated_at`` watermark queries, with their blind spots;
* :mod:`.debezium` — Debezium's PostgreSQL connector in Kafka Connect, read back from Kafka.

:mod:`.measure` runs one workload through each and builds the comparison table;
:mod:`.catalog` shows what each adds to the source database (and that nothing is left).
"""

from cdc_support.postgres.base import CaptureApproach, Declared, PolledCapture
from cdc_support.postgres.debezium import DebeziumApproach, DebeziumTarget
from cdc_support.postgres.logical_decoding import (
    LogicalDecodingApproach,
    LogicalDecodingConsumer,
)
from cdc_support.postgres.timestamp_polling import TimestampPollingApproach
from cdc_support.postgres.trigger_audit import TriggerAuditApproach

APPROACHES: dict[str, type[CaptureApproach]] = {
    cls.name: cls
    for cls in (
        LogicalDecodingApproach,
        TriggerAuditApproach,
        TimestampPollingApproach,
        DebeziumApproach,
    )
}
"""Approach classes by the name the features use."""

__all__ = [
    "APPROACHES",
    "CaptureApproach",
    "DebeziumApproach",
    "DebeziumTarget",
    "Declared",
    "LogicalDecodingApproach",
    "LogicalDecodingConsumer",
    "PolledCapture",
    "TimestampPollingApproach",
    "TriggerAuditApproach",
]
