@epic:Cross-storage_pipelines @story:P5_Kafka_to_Delta_Lake_and_Iceberg_sink_workers
Feature: Sink workers: Debezium topics applied to Delta Lake and Apache Iceberg tables
  As a data engineer who lands change data in a lakehouse
  I want a sink worker that applies a Debezium topic to a Delta or Iceberg table
  So that the table ends up exactly equal to the source database, also after a crash

  The pipeline is a source database, Debezium in Kafka Connect publishing each row change to
  a Kafka topic, and a sink worker: `cdc-spec sink`, a process of its own that reads the
  topic in micro-batches (up to 1,000 records or 300 ms here) and writes each batch to the
  table in one commit, keyed by the primary key. Within a batch only the latest event of a
  key counts: an insert then two updates leave the row of the second update, an update then
  a delete leave no row. Tombstones (the null records Debezium writes after a delete) are
  counted and skipped.

  Delta Lake: each batch is one MERGE (matched keys updated or deleted, new keys inserted).
  The same commit records, per Kafka partition, a Delta app transaction whose version is
  the next offset after the batch. The consumer group's offsets are committed after the
  table commit, at most every 5 seconds, so a restarted worker reads again what it applied
  since; the records below the version the table recorded are recognised and skipped.

  Apache Iceberg: each batch is one transaction that deletes the batch's keys and appends
  their latest rows (Iceberg does not enforce keys, so deleting first keeps one row per key).
  The snapshot records the consumed offsets in its summary, and a restarted worker seeks to
  them. Every ten commits old snapshots are expired, and a table of many small files is
  rewritten, so commit latency stays flat.

  A record the worker cannot parse goes to a dead-letter topic (`<topic>.dlq`) with the
  reason in its headers. A column added at the source is added to the table; rows written
  before read null in it. The worker serves Prometheus metrics and writes one JSON line per
  batch (its commit log), from which lag and exactly-once are checked. Every scenario runs
  on a real database, Kafka broker, Connect worker with Debezium (values with their schema,
  so the table gets typed columns), and a real table in a folder of its own.

  @slow
  Scenario Outline: <source> → <format>: a 10,000-operation workload ends with the sink table equal to the source table
    Given a customers table in <source> with 500 rows generated with seed 42, captured by Debezium
    And a sink worker applies the customers topic to a new <format> table
    When a workload of 10000 operations with seed 42 runs against the source table
    Then the <format> table equals the source table
    And the p95 lag from source commit to visible in the <format> table is under 5 seconds
    And the commit latency of the <format> table did not grow during the run
    And the worker's metrics endpoint reports every event it applied

    Examples:
      | source     | format  |
      | PostgreSQL | Iceberg |
      | PostgreSQL | Delta   |
      | MariaDB    | Delta   |

  Scenario Outline: <source> → <format>: the sink worker killed with SIGKILL mid-stream and restarted loses nothing and applies nothing twice
    Given a customers table in <source> with 200 rows generated with seed 7, captured by Debezium
    And a sink worker applies the customers topic to a new <format> table
    When a workload of 3000 operations with seed 7 runs, and the sink worker is killed with SIGKILL once it committed 1000 events and restarted after operation 2000
    Then the <format> table equals the source table
    And every change event was applied exactly once across both runs of the worker
    And the restarted worker went on from the position the <format> table recorded

    Examples:
      | source     | format  |
      | PostgreSQL | Iceberg |
      | PostgreSQL | Delta   |
      | MariaDB    | Delta   |

  Scenario Outline: <source> → <format>: a record the worker cannot parse goes to the dead-letter topic, and the worker goes on
    Given a customers table in <source> with 50 rows generated with seed 3, captured by Debezium
    And a sink worker applies the customers topic to a new <format> table
    When a record that is not JSON is written to the customers topic between two workloads of 100 operations
    Then the dead-letter topic holds that record, with the reason and its topic, partition and offset in its headers
    And the worker's metrics count 1 dead letter
    And the <format> table equals the source table

    Examples:
      | source     | format  |
      | PostgreSQL | Iceberg |
      | PostgreSQL | Delta   |
      | MariaDB    | Delta   |

  Scenario Outline: <source> → <format>: a column added at the source appears in the sink table
    Given a customers table in <source> with 20 rows generated with seed 5, captured by Debezium
    And a sink worker applies the customers topic to a new <format> table
    When the column loyalty_tier is added to the source table
    And 5 new customers with a loyalty tier are inserted and 3 existing customers get one
    Then the <format> table has a loyalty_tier column
    And the rows not written since the column was added have no loyalty_tier in the <format> table
    And the <format> table equals the source table

    Examples:
      | source     | format  |
      | PostgreSQL | Iceberg |
      | PostgreSQL | Delta   |
      | MariaDB    | Delta   |
