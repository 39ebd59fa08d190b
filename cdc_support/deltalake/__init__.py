"""Delta Lake Change Data Feed with delta-rs (no Spark): tables, feed reading, a consumer.

* :mod:`~cdc_support.deltalake.location` — :class:`DeltaLocation`: local folder or S3-compatible URI
  plus storage options;
* :mod:`~cdc_support.deltalake.feed` — read the feed by version or timestamp range and normalise it
  to :class:`~cdc_support.events.ChangeEvent`; detect vacuumed versions upfront;
* :mod:`~cdc_support.deltalake.consumer` — :class:`CdfConsumer`, incremental with a checkpoint file;
* :mod:`~cdc_support.deltalake.tables` — one helper per kind of commit, and a generated table.
"""

from cdc_support.deltalake.consumer import CdfBatch, CdfCheckpoint, CdfConsumer, CheckpointError
from cdc_support.deltalake.feed import (
    CDF_PROPERTY,
    CdfNotEnabled,
    CdfVersionsUnavailable,
    FeedRange,
    change_type_counts,
    check_versions_readable,
    commit_actions,
    commit_timestamps,
    feed_rows,
    feed_to_events,
    open_table,
    read_changes,
    read_feed,
    read_table,
    unreadable_versions,
)
from cdc_support.deltalake.location import DeltaLocation, remove_location
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
    "change_type_counts",
    "check_versions_readable",
    "commit_actions",
    "commit_timestamps",
    "feed_rows",
    "feed_to_events",
    "open_table",
    "read_changes",
    "read_feed",
    "read_rows",
    "read_table",
    "remove_location",
    "unreadable_versions",
]
