@epic:Cross-storage_pipelines @story:P5_Kafka_to_Delta_Lake_and_Iceberg_sink_workers
Feature: Sink workers: no single record stops a worker
  As a data engineer who runs a sink worker unattended
  I want a record the table cannot take to be set aside with its reason, and the rest applied
  So that one bad record never stops the pipeline, and a restart never trips on it again

  A sink worker (`cdc-spec sink`) applies a Debezium topic to a Delta or Iceberg table in
  micro-batches, one table commit per batch. A record that cannot be applied goes, unchanged,
  to the dead-letter topic `<topic>.dlq` with the reason and its topic, partition and offset
  in its headers; the rest of its batch is applied, and the worker goes on.

  Every record is checked before it goes into a batch: it must be a Debezium envelope (a
  value that is the JSON literal `null` is not a tombstone: a tombstone has no value at all),
  its row must hold its key columns, not null (even when the record key has them: a row
  written without its key would make the whole commit fail), and each value must fit its
  column (an integer beyond 64 bits, a string that is not valid Unicode do not).

  A table may also have rules of its own that no record shows: a Delta CHECK constraint, an
  Iceberg required column. When the table refuses a commit for its data, the worker commits
  the batch in two halves, one after the other, and so on down to the record the table
  refuses, which goes to the dead-letter topic. Each part records exactly the offsets it
  holds, so the commit log still accounts for every offset exactly once.

  A table without a primary key gives records with no key, and a tombstone with no key after
  each delete. The worker keys its table by the columns given with `--key`; tombstones without
  a key are counted and skipped. When the records have no key and `--key` names columns their
  rows do not have, no record could be applied: the worker stops at once (exit status 2) with
  one line naming `--key`, instead of sending every record to the dead-letter topic.

  Each scenario runs on a real Kafka broker and a real table in a folder of its own; the
  records with something wrong are produced straight to the topic, among Debezium-shaped
  change events of a generated customers table.

  Scenario Outline: <format>: each record that cannot be applied goes to the dead-letter topic with its reason, and the rest of its batch is applied
    Given a topic of Debezium change events: 300 operations on 40 customers generated with seed 21
    And these records written in the middle of it:
      | record                                                   | reason says                    |
      | a change event whose row has no id, only its record key  | has no key column(s) ['id']    |
      | a value that is the JSON literal null                    | JSON literal null              |
      | a change event whose id is null                          | key column 'id' is null        |
      | a change event whose id does not fit in 64 bits          | column 'id' (int64) cannot hold |
      | a change event whose full_name is not valid Unicode      | column 'full_name'             |
    When a sink worker applies the topic to a new <format> table
    Then the dead-letter topic holds each of those records unchanged, with its reason and its offset in its headers
    And the <format> table holds exactly the rows the other change events leave
    And the batches that held those records were committed, and every offset was taken exactly once
    And the worker is still running, and its metrics count 5 dead letters

    Examples:
      | format  |
      | Delta   |
      | Iceberg |

  Scenario Outline: <format>: a record the table itself refuses is found by committing halves of its batch
    Given a topic of Debezium change events: 300 operations on 40 customers generated with seed 22
    And a sink worker applied the first half of the topic to a new <format> table and was stopped
    And the <format> table refuses rows without a country
    When the second half is written with an update that sets a customer's country to null in its middle, and the worker is started again
    Then the dead-letter topic holds that update, with a reason that says the table refused it
    And the <format> table holds exactly the rows the other change events leave
    And the worker committed the batch that held it in parts, and every offset was taken exactly once

    Examples:
      | format  |
      | Delta   |
      | Iceberg |

  Scenario Outline: PostgreSQL → <format>: a table without a primary key is keyed by --key, and its tombstones without a key are skipped
    Given a PostgreSQL notes table without a primary key (REPLICA IDENTITY FULL) holding 20 distinct notes, captured by Debezium
    And a sink worker applies the notes topic to a new <format> table with --key note
    When 6 of the notes are changed and 4 are deleted
    Then the <format> table equals the notes table
    And the worker skipped 4 tombstones without a key and sent nothing to the dead-letter topic

    Examples:
      | format  |
      | Delta   |
      | Iceberg |

  Scenario: PostgreSQL → Delta: a sink worker whose --key is not in the rows of a table without a primary key stops with one line naming --key
    Given a PostgreSQL notes table without a primary key (REPLICA IDENTITY FULL) holding 5 distinct notes, captured by Debezium
    When a sink worker is started on the notes topic for a new Delta table with --key id
    Then it exits with status 2 and one line that names --key and the columns n, note
    And nothing went to the dead-letter topic, and no Delta table was made
