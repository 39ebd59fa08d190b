"""Schema changes applied mid-stream (features/pipelines/schema_changes.feature).

* :mod:`.cases` — the ``accounts`` table, the four changes (DROP COLUMN, int → bigint,
  varchar → text, a numeric's precision) per database, and the writes around them;
* :mod:`.source` — the table in PostgreSQL or MariaDB, one row per transaction;
* :mod:`.observed` — what each path did: the events' shape (Debezium, the native readers),
  the sink tables' types, rows and dead letters;
* :mod:`.pipeline` — what a scenario holds: the table and every path reading it.

What a sink does with a change is :mod:`cdc_support.sinks.type_changes`'s rule.
"""

from cdc_support.schema_changes.cases import CASES, Case
from cdc_support.schema_changes.observed import EventShape, FieldTypes, event_shape
from cdc_support.schema_changes.source import AccountsTable

__all__ = ["CASES", "AccountsTable", "Case", "EventShape", "FieldTypes", "event_shape"]
