@epic:Faults @story:F2_Snapshots_under_load
Feature: Snapshots under load: the handover to streaming, a snapshot a crash restarts, and an incremental snapshot
  As a team starting CDC on a table that is already large and busy
  I want to know that rows written while the connector reads the table are neither lost nor applied twice
  So that I can start capture, or read a table again, without stopping the application

  Each scenario preloads a table with 100,000 rows (`seq` 0) and runs 5,000 sequence-numbered
  single-row operations on it (inserts of new rows, updates and deletes of preloaded and new
  ones, each setting `seq` to its number), paced so that they span Debezium's reading of the
  table and what follows it.

  **The initial snapshot** reads every row (op `r`) in one transaction, consistent with a
  point of the write-ahead log; then the connector streams from that point. A change committed
  before the point is *folded into* the snapshot — the row's read carries it, nothing streams
  it; a change committed after it must be streamed. The audit finds the point (the first
  operation streamed), checks every operation from there on was delivered, and counts
  *doubled* changes: streamed changes the snapshot had already read. The topic may hold those
  twice; a consumer that upserts by key is not hurt, and the rebuilt table shows it.

  **A snapshot that dies** (Kafka Connect killed with SIGKILL while it reads) is not resumed:
  Connect restarts the task, the offsets say the snapshot never finished, so it starts again
  from the first row, consistent with a new point. The cost is every row read twice up to the
  kill, counted here as re-reads. And the topic now holds both attempts: a consumer must
  start over at the last snapshot's first read (`source.snapshot` = `first`), because a row
  the first attempt read and that was deleted before the second is in no later event —
  replayed whole, the topic keeps it (the report shows that replay's difference too).

  **An incremental snapshot** (`execute-snapshot` inserted into the connector's signal table,
  `public.debezium_signal`) reads the table in primary-key chunks *while streaming*. While a
  chunk is open, a streamed change to one of its rows drops that row from the chunk, so a read
  never overwrites a newer change. The connector marks each chunk's window by inserting into
  the signal table itself: its role needs INSERT there, and the table must be in its
  publication (the connector factory does both, and takes the grant back afterwards).

  @fault @slow
  Scenario: Debezium on PostgreSQL: rows written while the initial snapshot reads are neither lost nor doubled in the rebuilt table
    Given a sequenced table in PostgreSQL preloaded with 100000 rows
    When Debezium starts on it, and 5000 sequence-numbered operations run at 250 per second once it has read 1000 rows
    Then the snapshot read every row once, and operations committed while it read
    And every change committed after the snapshot's point was streamed; the doubled ones are counted
    And the table rebuilt from the last snapshot's reads and the stream equals the source table
    And the interleaving of reads and streamed changes is in the report

  @fault @slow
  Scenario: Kafka Connect killed with SIGKILL during the initial snapshot: the snapshot starts again, and the re-read rows are its cost
    Given a sequenced table in PostgreSQL preloaded with 100000 rows
    When Debezium starts on it, and 5000 sequence-numbered operations run at 250 per second once it has read 1000 rows; Kafka Connect is killed with SIGKILL once 20000 are read
    Then the snapshot started again: rows were read twice, and every row at least once
    And every change committed after the snapshot's point was streamed; the doubled ones are counted
    And the table rebuilt from the last snapshot's reads and the stream equals the source table
    And the interleaving of reads and streamed changes is in the report

  @fault @slow
  Scenario: An incremental snapshot signalled on a 100,000-row PostgreSQL table while changes stream into it
    Given a sequenced table in PostgreSQL preloaded with 100000 rows, captured by Debezium without an initial snapshot
    When 5000 sequence-numbered operations run at 400 per second and an incremental snapshot is signalled once 500 are committed
    Then every committed change was streamed, and reads and streamed changes interleaved
    And the table rebuilt from the last snapshot's reads and the stream equals the source table
    And the interleaving of reads and streamed changes is in the report
