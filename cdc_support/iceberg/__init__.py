"""Apache Iceberg: change data capture by diffing snapshots (pyiceberg, SQL catalog).

Iceberg keeps no change log. Every commit writes a new *snapshot*: the complete list of the
table's live data files. pyiceberg writes copy-on-write only: an update or delete rewrites the
affected data files whole, so a rewritten file carries the untouched rows of the old file over
into the new one. A changelog between two snapshots is therefore derived: the rows of the data
files live at one end only are joined on the table's identifier fields, and rows identical on
both sides (carried over) are dropped. Every event's ``source`` holds the table, the snapshot
id, the range start, the sequence number and the operation; ``commit_ts`` is the snapshot's
timestamp. Ranges whose ends carry delete files (merge-on-read, written by other engines) and
expired snapshots are refused with an error naming the fix.

* :mod:`~cdc_support.iceberg.catalog` — :func:`open_catalog`: a SQL catalog (SQLite file in
  the warehouse by default, or PostgreSQL) with a local warehouse;
* :mod:`~cdc_support.iceberg.tables` — schemas with identifier fields, creating and reading
  tables (also as of an older snapshot);
* :mod:`~cdc_support.iceberg.snapshots` — snapshot summaries and the lineage of a range;
* :mod:`~cdc_support.iceberg.files` — data files added and removed between two snapshots;
* :mod:`~cdc_support.iceberg.diff` — :func:`diff_snapshots`: the net changes of a range;
* :mod:`~cdc_support.iceberg.changelog` — :func:`changes_between` (net or per snapshot),
  :func:`collapse_to_net`, report rows;
* :mod:`~cdc_support.iceberg.consumer` — :class:`SnapshotConsumer`, incremental with a
  checkpoint file;
* :mod:`~cdc_support.iceberg.merge_on_read` — a position delete as Spark writes it, to show
  how a diff refuses snapshots with delete files;
* :mod:`~cdc_support.iceberg.errors` — the errors, each naming the fix;
* :mod:`~cdc_support.iceberg.warehouse` — :func:`open_warehouse`: a throwaway catalog and
  folder, dropped when closed;
* :mod:`~cdc_support.iceberg.expected` — what a write should have changed, key by key, and
  how derived events differ from it;
* :mod:`~cdc_support.iceberg.generated` — :class:`GeneratedIcebergTable`: generated rows, the
  model of the table, and each write's expected changes (the counterpart of Delta's
  ``GeneratedDeltaTable``);
* :mod:`~cdc_support.iceberg.polls` — :class:`ConsumerRun`: consumers of a generated table on
  one checkpoint file, and what each poll delivered and should have.

The last three are imported from their modules (they need the e-commerce generator).
"""

from cdc_support.iceberg.catalog import CATALOG_URI_ENV, check_catalog_uri, open_catalog
from cdc_support.iceberg.changelog import (
    Changelog,
    changes_between,
    collapse_to_net,
    event_rows,
    snapshot_events,
)
from cdc_support.iceberg.consumer import Checkpoint, SnapshotConsumer
from cdc_support.iceberg.diff import SnapshotDiff, diff_snapshots
from cdc_support.iceberg.errors import (
    DeleteFilesError,
    IcebergChangelogError,
    SnapshotExpiredError,
    SnapshotLineageError,
)
from cdc_support.iceberg.files import FileChange, delete_files
from cdc_support.iceberg.merge_on_read import commit_position_deletes, row_positions
from cdc_support.iceberg.snapshots import snapshot_info
from cdc_support.iceberg.tables import (
    GENERATED_COLUMNS,
    create_table,
    generated_schema,
    iceberg_schema,
    identifier_columns,
    read_snapshot,
    rows_by_key,
    to_arrow,
)

__all__ = [
    "CATALOG_URI_ENV",
    "GENERATED_COLUMNS",
    "Changelog",
    "Checkpoint",
    "DeleteFilesError",
    "FileChange",
    "IcebergChangelogError",
    "SnapshotConsumer",
    "SnapshotDiff",
    "SnapshotExpiredError",
    "SnapshotLineageError",
    "changes_between",
    "check_catalog_uri",
    "collapse_to_net",
    "commit_position_deletes",
    "create_table",
    "delete_files",
    "diff_snapshots",
    "event_rows",
    "generated_schema",
    "iceberg_schema",
    "identifier_columns",
    "open_catalog",
    "read_snapshot",
    "row_positions",
    "rows_by_key",
    "snapshot_events",
    "snapshot_info",
    "to_arrow",
]
