@epic:Delta_Lake @story:P3_Delta_Lake_Change_Data_Feed
Feature: Delta Lake Change Data Feed (delta-rs, no Spark)
  As a data engineer who reads changes out of a lakehouse table
  I want to see what Delta Lake's Change Data Feed records for each kind of write
  So that I know what an incremental consumer of the feed can rely on

  A Delta table is a folder of Parquet data files plus a transaction log, _delta_log/: one
  JSON file per commit, named by the table version it creates, listing the commit's actions
  (add a data file, remove a data file, commitInfo with the operation and a timestamp). Files
  are never changed in place: an UPDATE, DELETE or MERGE rewrites every data file holding a
  matched row and removes the old file from the table (it stays on storage until VACUUM).

  With the table property delta.enableChangeDataFeed=true, a commit that updates or deletes
  rows also writes the changed rows to _change_data/ files ("cdc" actions in its log entry).
  The Change Data Feed is read by version range or by commit-timestamp range; every row comes
  with _change_type (insert, update_preimage, update_postimage, delete), _commit_version and
  _commit_timestamp. A commit without change files (an append) is read from the data files
  it added (as inserts) and removed (as deletes); files added or removed with dataChange=false
  (OPTIMIZE, VACUUM) give no rows.

  Here the feed is read with delta-rs (the deltalake Python package, no Spark) and normalised
  into the same change events as every other approach: insert → c, delete → d, and the pre-
  and post-image of an update → one u with before and after. The commit version is the
  position, the commit timestamp the commit time. Delta has no primary key: the consumer
  names the key columns (customers.id). Each scenario writes a table of its own in a temporary
  folder; the change rows and the _delta_log entry of each write are attached to its steps.

  Background:
    Given a Delta customers table with the Change Data Feed enabled
    And 10 generated customers (seed 7) are appended to it

  Scenario Outline: <write> appears in the feed as <change rows>
    Each write is one commit, so one table version. Within a commit the events are ordered
    deletes, then updates, then inserts, so that a row deleted and inserted again by the same
    commit replays to its new state.

    When I <write>
    Then the feed of the new version holds <change rows>
    And it normalises to the events <events>
    And every event's before-image is the row of the previous version and its after-image the row of the new version
    And replaying the whole feed rebuilds the table

    Examples:
      | write                                                    | change rows                                                  | events          |
      | append 5 more generated customers                        | 5 insert                                                     | 5 c             |
      | update the name of customer 2                            | 1 update_preimage, 1 update_postimage                        | 1 u             |
      | delete customers 3 and 4                                 | 2 delete                                                     | 2 d             |
      | merge 3 changed customers and 2 new ones                 | 3 update_preimage, 3 update_postimage, 2 insert              | 3 u, 2 c        |
      | merge 2 changed customers, 2 new ones and 2 deletions    | 2 update_preimage, 2 update_postimage, 2 insert, 2 delete    | 2 u, 2 c, 2 d   |
      | overwrite customers 5 to 7 with a predicate              | 3 delete, 3 insert                                           | 3 d, 3 c        |

  Scenario: Reading by commit timestamp returns the commits made in that time range
    A timestamp range is resolved with the commit timestamps of the log (commitInfo.timestamp,
    in milliseconds); both ends are inclusive, so two commits made in the same millisecond
    cannot be told apart. The range here comes from the table's own history, not from a clock.

    When 4 more commits are made: an update, a delete, an append and a merge
    And I read the feed from the commit timestamp of version 3 to that of version 4, as the table history gives them
    Then it holds exactly the versions whose commit timestamp lies in that range
    And each event's commit time is its version's commit timestamp in the history

  Scenario: Compaction (OPTIMIZE) rewrites files but adds no change rows
    OPTIMIZE packs small files into bigger ones. Its log entry removes and adds files with
    dataChange=false, which tells every feed reader that no row changed.

    Given 3 more appends of 4 generated customers each
    When the table is compacted with OPTIMIZE
    Then the commit log entry of that version removes 4 files and adds 1, all with dataChange=false
    And the feed of the new version holds no rows
    And the table holds the same rows as the version before

  Scenario: An update that changes no value is read back as a delete and re-insert of its whole file
    Observed with delta-rs 1.6.6: an UPDATE that matches a row but leaves every value as it
    was still rewrites the data file (the operation metrics say 1 updated row), but writes no
    change file, because the row's pre-image and post-image are equal. The feed then falls back
    to the data files of the commit: every row of the removed file is read as a delete and every
    row of the added file as an insert — all 10 customers here, not only customer 2. A consumer
    sees 10 deletes and 10 inserts of unchanged rows; replaying them is harmless.

    When I update customer 2 setting its name to its own value
    Then the commit log entry of that version has 1 add, 1 remove and no cdc action
    And the feed of that version has 10 delete rows, 10 insert rows and no update rows
    And every deleted row comes back unchanged as an inserted row
    And replaying the whole feed rebuilds the table

  Scenario: A consumer whose versions were vacuumed away stops with a clear error
    VACUUM deletes the data files that are no longer part of the table once they are older than
    the retention (delta.deletedFileRetentionDuration, 7 days by default; 0 hours here, which
    needs enforce_retention_duration=False). The feed of an append is read from its data files:
    once OPTIMIZE has compacted them away and VACUUM has deleted them, those versions cannot be
    read again. The feed of an update is read from its change file, which VACUUM (in delta-rs
    1.6.6) leaves in place. delta-rs itself fails late, with an Arrow error about a missing
    Parquet file when the rows are read; the consumer checks the log first and names the
    versions it needs, the versions that are gone, and the fix.

    Given a CDF consumer with a checkpoint file has handled the feed up to the latest version
    And while it is stopped, 3 appends of 2 customers and an update of customer 1 are made
    And the table is compacted with OPTIMIZE and vacuumed with a retention of 0 hours
    When the consumer polls again
    Then it fails with CdfVersionsUnavailable naming the versions it needs, those that are gone and the fix
    And its checkpoint still holds the version it had handled up to
    And delta-rs alone opens the same feed without error and fails only when the rows are read

  Scenario: A consumer stopped mid-way resumes from its checkpoint with no loss and no repeat
    The consumer remembers the last version it handled in a small JSON file, replaced
    atomically after each batch has been handled. A new consumer (a restarted process) reads it
    and continues with the next version, whatever was committed in between.

    Given a CDF consumer with a checkpoint file
    And a generated workload of 10 commits with seed 42 has run
    When the consumer handles the feed 3 versions at a time and stops after 2 batches
    And a generated workload of 8 more commits runs while it is stopped
    And a new consumer starts from the same checkpoint file and handles the feed to the end
    Then per key, the events handled by the two consumers equal one full read of the feed: none lost, none repeated
    And the table rebuilt from the handled events equals the Delta table
    And the checkpoint holds the table's latest version
