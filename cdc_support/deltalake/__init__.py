"""Delta Lake Change Data Feed with delta-rs (no Spark): tables, feed reading, a consumer.

* :mod:`~cdc_support.deltalake.location` — :class:`DeltaLocation`: local folder or S3-compatible URI
  plus storage options;
* :mod:`~cdc_support.deltalake.log` — the commit log: open a table, its history and log
  entries; find vacuumed versions (:class:`CdfVersionsUnavailable`);
* :mod:`~cdc_support.deltalake.feed` — read the feed by version or timestamp range and normalise it
  to :class:`~cdc_support.events.ChangeEvent`; detect vacuumed versions upfront;
* :mod:`~cdc_support.deltalake.consumer` — :class:`CdfConsumer`, incremental with a checkpoint file;
* :mod:`~cdc_support.deltalake.tables` — one helper per kind of commit, and a generated table;
* :mod:`~cdc_support.deltalake.audit` — one version's feed and log entry, images, timestamp reads;
* :mod:`~cdc_support.deltalake.runs` — consumer runs recorded for checks (handled batches, outages,
  the restart audit).
"""

from cdc_support.deltalake.audit import (
    TimestampRead,
    action_counts,
    commit_operation,
    data_change_flags,
    data_files,
    delta_rs_read_error,
    feed_versions,
    image_problems,
    latest_version,
    row_multiset,
    sorted_change_rows,
    table_history,
    table_properties,
    version_events,
    version_feed,
)
from cdc_support.deltalake.consumer import CdfBatch, CdfCheckpoint, CdfConsumer, CheckpointError
from cdc_support.deltalake.feed import (
    CDF_PROPERTY,
    CdfNotEnabled,
    FeedRange,
    change_type_counts,
    feed_rows,
    feed_to_events,
    read_changes,
    read_feed,
    read_table,
)
from cdc_support.deltalake.location import DeltaLocation, remove_location
from cdc_support.deltalake.log import (
    CdfVersionsUnavailable,
    check_versions_readable,
    commit_actions,
    commit_timestamps,
    open_table,
    unreadable_versions,
)
from cdc_support.deltalake.runs import (
    Handled,
    Outage,
    PollFailure,
    RestartAudit,
    contiguous,
    run_batches,
    run_to_end,
)
from cdc_support.deltalake.tables import ARROW_SCHEMAS, DeltaCommit, GeneratedDeltaTable, read_rows

__all__ = [
    "ARROW_SCHEMAS",
    "CDF_PROPERTY",
    "CdfBatch",
    "CdfCheckpoint",
    "CdfConsumer",
    "CdfNotEnabled",
    "CdfVersionsUnavailable",
    "CheckpointError",
    "DeltaCommit",
    "DeltaLocation",
    "FeedRange",
    "GeneratedDeltaTable",
    "Handled",
    "Outage",
    "PollFailure",
    "RestartAudit",
    "TimestampRead",
    "action_counts",
    "change_type_counts",
    "check_versions_readable",
    "commit_actions",
    "commit_operation",
    "commit_timestamps",
    "contiguous",
    "data_change_flags",
    "data_files",
    "delta_rs_read_error",
    "feed_rows",
    "feed_to_events",
    "feed_versions",
    "image_problems",
    "latest_version",
    "open_table",
    "read_changes",
    "read_feed",
    "read_rows",
    "read_table",
    "remove_location",
    "row_multiset",
    "run_batches",
    "run_to_end",
    "sorted_change_rows",
    "table_history",
    "table_properties",
    "unreadable_versions",
    "version_events",
    "version_feed",
]
