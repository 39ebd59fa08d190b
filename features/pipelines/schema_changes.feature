@epic:Cross-storage_pipelines @story:P5_Kafka_to_Delta_Lake_and_Iceberg_sink_workers
Feature: Schema changes mid-stream: a dropped column and widened types, from the source to the lakehouse
  As a data engineer whose source tables change while the pipeline runs
  I want to know what each part of the pipeline does with a dropped column or a wider type
  So that no change is lost or silently altered on its way to Delta Lake and Iceberg

  A source table changes shape with ALTER TABLE while changes stream out of it. Each scenario
  applies one change to an `accounts` table (id, qty integer, note varchar(20), price
  numeric(8,2), legacy_code varchar(40)) between single-row writes, and watches four paths at
  once: Debezium publishing the table's changes to Kafka (values with their Kafka Connect
  schema), the native reader of the database (PostgreSQL: a pgoutput logical decoding
  consumer; MariaDB: a binlog reader), and two `cdc-spec sink` workers applying Debezium's
  topic to a Delta table and to an Iceberg table. Nothing waits for a reader between the
  writes and the ALTER TABLE: it happens mid-stream.

  The events stay correct because each path learns a table's shape from the stream itself, at
  the position of the change: pgoutput sends a new Relation message before the first change
  after an ALTER TABLE, MariaDB's binlog carries the column names and types in the table-map
  event before each row event (binlog_row_metadata=FULL), and Debezium's MariaDB connector
  parses each DDL statement in the binlog (and keeps it in its schema history topic). After a DROP COLUMN the events have no such column;
  after a widening they carry the wider type (Debezium: int32 becomes int64, the numeric's
  precision in its schema grows) and the values only it holds, exactly: rows 16 and 17 are
  inserted after the change with a quantity above 2^31, a 300-character note, a price with 10
  digits before the point.

  A sink never drops a column: it keeps it, and rows written since the drop read null in it
  (the source has no value for them; older rows keep theirs, as a history does). A string
  column holds a longer string as it is. A wider number is where the formats differ. Iceberg
  widens the column in place (schema evolution allows int to long, float to double and a
  decimal's precision; the data files keep the narrow type and readers promote it). delta-rs,
  the Delta writer, has no type widening (Delta's typeWidening table feature is written by
  Spark only), so a Delta table keeps its type: the values that still fit are written, and a
  record with a value beyond it goes to the dead-letter topic with the reason in its
  `cdc.dlq.reason` header, naming the column, the new type and the fix (rewrite the table
  with the wider type, then replay the dead letters). The worker goes on either way. Each
  table then equals the source for every row it applied, and every other row's record is on
  the dead-letter topic: nothing is lost or changed silently.

  Scenario Outline: <source>: <change> mid-stream, seen by Debezium, <reader> and both sinks
    Given an accounts table in <source> with 10 rows, captured by Debezium and by <reader>, and applied to a Delta and an Iceberg table by two sink workers
    When 6 rows are written, then <change> at the source, then 8 more are written or deleted
    Then Debezium's events after the change <events>
    And <reader>'s events after the change <events>
    And the Delta table <delta>
    And the Iceberg table <iceberg>
    And each sink table equals the source table for every row it applied, and holds every other row's record on the dead-letter topic; both workers still run

    Examples:
      | source     | reader                        | change                      | events                                            | delta                                                                               | iceberg                                                    |
      | PostgreSQL | the logical decoding consumer | legacy_code is dropped      | no longer carry legacy_code                       | keeps legacy_code, null in the rows written since the drop                          | keeps legacy_code, null in the rows written since the drop |
      | PostgreSQL | the logical decoding consumer | qty becomes bigint          | carry the values only the new type holds, exactly | keeps qty as int32 and dead-letters the 2 records whose value does not fit          | widens qty from int32 to int64                             |
      | PostgreSQL | the logical decoding consumer | note becomes text           | carry the values only the new type holds, exactly | keeps note as string, which holds every new value                                   | keeps note as string, which holds every new value          |
      | PostgreSQL | the logical decoding consumer | price becomes numeric(12,2) | carry the values only the new type holds, exactly | keeps price as decimal(8,2) and dead-letters the 2 records whose value does not fit | widens price from decimal(8,2) to decimal(12,2)            |
      | MariaDB    | the binlog reader             | legacy_code is dropped      | no longer carry legacy_code                       | keeps legacy_code, null in the rows written since the drop                          | keeps legacy_code, null in the rows written since the drop |
      | MariaDB    | the binlog reader             | qty becomes bigint          | carry the values only the new type holds, exactly | keeps qty as int32 and dead-letters the 2 records whose value does not fit          | widens qty from int32 to int64                             |
      | MariaDB    | the binlog reader             | note becomes text           | carry the values only the new type holds, exactly | keeps note as string, which holds every new value                                   | keeps note as string, which holds every new value          |
      | MariaDB    | the binlog reader             | price becomes numeric(12,2) | carry the values only the new type holds, exactly | keeps price as decimal(8,2) and dead-letters the 2 records whose value does not fit | widens price from decimal(8,2) to decimal(12,2)            |

