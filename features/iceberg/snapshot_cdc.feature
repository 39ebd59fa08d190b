@epic:Apache_Iceberg @story:P4_Iceberg_snapshot_CDC
Feature: Iceberg snapshot diff (changes derived between two snapshots)
  As a data engineer comparing change data capture approaches
  I want to see how row changes are derived from the snapshots of an Apache Iceberg table
  So that I know what a snapshot-diff consumer can tell me, and where it stops

  An Iceberg table is a set of immutable data files (Parquet) listed by metadata. Every
  commit writes a new snapshot: the complete list of the table's live data files, with a
  summary of the operation (append, overwrite, delete) and of the files and records it added
  and removed. Older snapshots stay readable by id or by time ("time travel") until they are
  expired. Iceberg keeps no row-level change log, and pyiceberg writes copy-on-write: an
  update or a delete rewrites each affected data file whole, and the rows it did not touch
  are carried over into the new file.

  Changes are therefore derived. The data files live only in the newer snapshot are added,
  those live only in the older one are removed; their rows are joined on the table's
  identifier fields (its key). A key found only among the added rows is an insert (op c),
  only among the removed rows a delete (d), on both sides with different values an update
  (u) with its before and after images. A row identical on both sides was carried over and
  is not a change. The diff of two snapshots is a net change set: one event per key for the
  whole range. Each event's source holds the snapshot id; its commit time is the snapshot's
  timestamp.

  Every scenario runs on a real Iceberg table in a SQL catalog (a SQLite file, or PostgreSQL
  when CDC_ICEBERG_CATALOG_URI names one) with a warehouse folder of its own; products come from the seeded e-commerce generator. The report shows
  the snapshot summaries, the data files added and removed, and the derived change rows.

  Background:
    Given an Iceberg products table keyed by id, with 20 products generated with seed 11

  Scenario Outline: "<write>" reads as <inserts> inserts, <updates> updates and <deletes> deletes
    Rows the write did not change never appear as events, even when the write rewrote the
    data file that holds them: they are carried over.

    When I <write>
    Then the changes since the previous snapshot are <inserts> inserts, <updates> updates and <deletes> deletes
    And each change is what the write did to its key, with before and after images
    And <carried> unchanged rows were carried over into rewritten files and are not reported
    And the previous snapshot's rows with the changes applied equal the current table

    Examples:
      | write                                                                        | inserts | updates | deletes | carried |
      | append 5 new products                                                        | 5       | 0       | 0       | 0       |
      | upsert 3 changed, 1 unchanged and 2 new products                             | 2       | 3       | 0       | 17      |
      | delete the products with stock under 100                                     | 0       | 0       | 6       | 14      |
      | overwrite the products with id 16 to 20 by 2 changed, 1 unchanged and 1 new product | 1       | 2       | 2       | 16      |

  Scenario: An upsert that commits several snapshots reads as one change set
    pyiceberg's upsert commits one transaction made of several snapshots: an overwrite that
    rewrites the data files holding the matched keys without them, an append of the new
    versions of those rows, and an append of the new keys. A reader sees all of it or none
    of it. Across the upsert, each removed row meets its new version: an update. Read
    snapshot by snapshot, the same updated key is a delete in the overwrite and an insert in
    the append that follows.

    When I upsert 3 changed, 1 unchanged and 2 new products
    Then the upsert committed the snapshots "overwrite, append, append" in one metadata commit
    And across the upsert, the changes are 3 updates and 2 inserts, one per key
    And snapshot by snapshot, each of the 3 updated products is a delete in the overwrite and an insert in the next append

  Scenario Outline: A product <history> nets to <net>
    Net changes collapse each key's history over a range of snapshots into one change: only
    the row before the range and the row after it count. The diff of the range's two ends
    gives them directly; folding the snapshot-by-snapshot changes gives the same.

    When product <id> is <history>, one commit per write
    Then the net change of product <id> over those commits is <net>, and no other product changed
    And folding the snapshot-by-snapshot changes gives the same net changes

    Examples:
      | history                                | id | net                                            |
      | inserted, then updated                 | 21 | an insert of its last version                  |
      | inserted, updated, then deleted        | 21 | nothing                                        |
      | updated twice                          | 1  | an update from the original to its last version |
      | updated, then deleted                  | 1  | a delete of the original                       |
      | deleted, then inserted with new values | 1  | an update from the original to its last version |
      | deleted, then inserted unchanged       | 1  | nothing                                        |

  Scenario: Time travel reads an older snapshot as it was
    When I note the current snapshot
    And I upsert 3 changed, 1 unchanged and 2 new products
    And I delete the products with stock under 100
    Then reading the noted snapshot by its id gives the 20 generated products
    And reading the table as of the noted snapshot's timestamp gives the same snapshot
    And the current snapshot gives the products after both writes

  Scenario: A consumer whose snapshot was expired gets a clear error, and can start over
    Expiring snapshots removes them from the table's metadata (and lets their files be
    deleted). A diff needs both of its ends, so a consumer whose checkpoint names an expired
    snapshot cannot go on: it must read the table anew, as a snapshot of read events (op r).

    Given an incremental consumer that has read the table up to its current snapshot
    When I upsert 3 changed, 1 unchanged and 2 new products
    And every snapshot but the current one is expired
    Then the consumer's next poll fails, naming its expired snapshot and the fix
    And the consumer's checkpoint still holds that snapshot
    And after a bootstrap the consumer holds every current product, and its next poll sees only the 2 products appended since

  Scenario: A restarted consumer resumes from its checkpoint: no change lost, none repeated
    The consumer keeps the id of the last snapshot it processed in a small JSON file, written
    to a temporary file and renamed over the old one, so a crash leaves the old checkpoint or
    the new one, never half of one. It moves the checkpoint only after the changes were
    handed over. Each poll diffs the checkpointed snapshot against the current one.

    Given an incremental consumer that has read the table up to its current snapshot
    When 2 rounds of writes with seed 21 are committed, the consumer polling after each
    And the consumer is stopped
    And 3 more rounds of writes with seed 22 are committed
    And a new consumer starts from the same checkpoint file and polls
    Then each poll delivered exactly the changes of its own range, key by key
    And the polls' snapshot ranges follow each other with no gap and no overlap
    And the rows rebuilt from everything the consumers delivered equal the current table

  Scenario: A snapshot with delete files, written merge-on-read by another engine, is refused
    Engines such as Spark, Flink or Trino can delete rows merge-on-read: instead of rewriting
    the data file, they write a delete file listing the positions of the deleted rows, and
    readers skip those rows. No data file is added or removed, so a diff of data files would
    see no change at all. The diff refuses such a snapshot rather than miss the delete, and
    names the delete file and the fix. pyiceberg itself writes copy-on-write only; here the
    position delete file, its manifest and the delete snapshot are written the way Spark
    writes them, with pyiceberg's own low-level writers.

    When another engine deletes the products with id 2 and 3 merge-on-read, writing a position delete file
    Then reading the table applies the delete: the products with id 2 and 3 are gone, and no data file was added or removed
    And the changes since the previous snapshot cannot be derived: the error names the delete file and the fix
