@epic:Cross-storage_pipelines @story:P5_Kafka_to_Delta_Lake_and_Iceberg_sink_workers
Feature: Sink tables keep the source's column types, and large values an update did not send
  As a data engineer who queries the lakehouse copy of a PostgreSQL table
  I want its columns typed like the source's, with the source's exact values
  So that the copy answers like the source: no numbers as strings, no placeholders for text

  The sink worker (`cdc-spec sink`) types a column from the Kafka Connect schema each record
  carries (the connector's value converter has `schemas.enable=true`). With the connector's
  `decimal.handling.mode=string` a numeric arrives as text, so the connector also sets
  `datatype.propagate.source.type` for numeric and decimal columns: the schema then names the
  source type with its precision and scale, and the column becomes an exact decimal. Arrow,
  Delta and Iceberg decimals hold 38 digits: an unconstrained numeric becomes decimal(38,10).
  A value that does not fit its column (NaN, more digits or decimal places than the column
  holds) is never rounded: its record goes to the dead-letter topic `<topic>.dlq` with the
  reason, and the worker goes on. JSON is stored as text, exactly as PostgreSQL writes it
  (`doc::text`). Delta has no time and no uuid type: a time is stored as microseconds since
  midnight, a uuid as its text; Iceberg has both.

  With REPLICA IDENTITY DEFAULT, an UPDATE that leaves a large (TOASTed, over about 2 kB)
  value unchanged does not carry it, and Debezium sends a placeholder instead
  (`__debezium_unavailable_value`, base64 of the same bytes for bytea; the sink's
  `--unavailable-placeholder` must match the connector's `unavailable.value.placeholder`). The
  sink never writes the placeholder: it keeps the value from an earlier event of the same key
  in the batch, else from the table (Delta: the MERGE keeps the target's column; Iceberg: the
  current row is read before the delete + append). Such events are counted, in the metric
  `cdc_sink_unavailable_events_total` and in the commit log.

  Scenario Outline: PostgreSQL → <format>: every column keeps its type and its exact value
    Given a PostgreSQL table with a column of each common type, captured by Debezium with value schemas and numeric source types
    And a sink worker applies that table's topic to a new <format> table
    When 3 rows with edge values are inserted, and the amount and the tags of row 2 are updated
    Then the <format> table holds every source row with exactly its values
    And the <format> table's columns have these types:
      | column      | PostgreSQL       | Delta          | Iceberg         |
      | id          | bigint           | long           | long            |
      | amount      | numeric(38,10)   | decimal(38,10) | decimal(38, 10) |
      | happened_at | timestamptz      | timestamp      | timestamptz     |
      | day         | date             | date           | date            |
      | at_time     | time             | long           | time            |
      | doc         | jsonb            | string         | string          |
      | tags        | text[]           | array<string>  | list<string>    |
      | uid         | uuid             | string         | uuid            |
      | payload     | bytea            | binary         | binary          |
      | flag        | boolean          | boolean        | boolean         |
      | big         | bigint           | long           | long            |
      | ratio       | double precision | double         | double          |
      | label       | varchar(40)      | string         | string          |

    Examples:
      | format  |
      | Delta   |
      | Iceberg |

  Scenario Outline: PostgreSQL → <format>: a value that does not fit its column goes to the dead-letter topic, and the worker goes on
    Given a PostgreSQL table with a column of each common type, captured by Debezium with value schemas and numeric source types
    And a sink worker applies that table's topic to a new <format> table
    When rows with the amounts 1.5, NaN and -2.25 are inserted
    And the source's amount column is widened to numeric(60,10), and rows with the amounts 1e40 and 7 are inserted
    Then the dead-letter topic holds the records of the rows with the amounts NaN and 1e40, with reasons "is not a finite number" and "digits before the point"
    And the <format> table holds exactly the 3 rows whose amount fits, with their amounts

    Examples:
      | format  |
      | Delta   |
      | Iceberg |

  Scenario Outline: PostgreSQL → <format>: an update that leaves a large TOASTed value unchanged keeps the value in the table
    Given a documents table with REPLICA IDENTITY DEFAULT, captured by Debezium for a sink
    And a sink worker for the documents topic and a new <format> table, not started yet
    When document 2 is inserted with a 10 kB random body and attachment, and then only its title is updated
    And the sink worker starts and applies both events of document 2 in one batch
    And document 1 is inserted with a 10 kB random body and attachment, and applied
    And only the title of document 1 is updated
    Then both update events carry Debezium's placeholder for the body and the attachment
    And the <format> table equals the documents table, with the real 10 kB bodies and attachments
    And the worker counts 2 events that carried the placeholder, in its metrics and its commit log: 1 filled from its batch, 1 from the table

    Examples:
      | format  |
      | Delta   |
      | Iceberg |
