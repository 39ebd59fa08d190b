@epic:PostgreSQL @story:P1_PostgreSQL_logical_replication_through_Debezium
Feature: Large (TOASTed) values that an update leaves unchanged
  As a data engineer replaying Debezium's topics into another store
  I want to know what an update carries for a large column it did not touch
  So that my copy keeps the value instead of overwriting it with a placeholder

  PostgreSQL stores a value larger than about 2 kB out of line, in the table's TOAST
  relation. An UPDATE that does not touch such a value does not copy it, and the write-ahead
  log does not carry it either, unless REPLICA IDENTITY FULL makes PostgreSQL log the whole
  old row. Debezium does not read the missing value back from the table (it may have changed
  since), so it sends a placeholder: "__debezium_unavailable_value" for text, and the same
  bytes, base64-encoded by the JSON converter, for bytea. A consumer must keep the value it
  already has when it sees the placeholder. Rebuilding a table from the topic does so, and
  counts the events it had to repair. The documents here hold 10 kB of random, incompressible
  text and bytes, so PostgreSQL really stores them out of line.

  Scenario Outline: With REPLICA IDENTITY <identity>, an update of the title alone carries <what> for the large columns
    Given a documents table with REPLICA IDENTITY <identity> holding one document with a 10 kB random body and attachment
    And Debezium captures the documents table with its default placeholder
    When I update only the document's title
    Then the update event's body is <body>
    And the update event's attachment is <attachment>
    And the documents rebuilt from the topic equal the source table, with <repaired> event repaired

    Examples:
      | identity | what            | body                            | attachment                                  | repaired |
      | DEFAULT  | a placeholder   | "__debezium_unavailable_value"  | "X19kZWJleml1bV91bmF2YWlsYWJsZV92YWx1ZQ=="  | 1        |
      | FULL     | the real values | the real 10 kB text             | the real 10 kB bytes                        | 0        |

  Scenario: unavailable.value.placeholder chooses the placeholder, and the replay must be told
    Given a documents table with REPLICA IDENTITY DEFAULT holding one document with a 10 kB random body and attachment
    And Debezium captures the documents table with unavailable.value.placeholder=__unchanged__
    When I update only the document's title
    Then the update event's body is "__unchanged__"
    And the documents rebuilt from the topic with the placeholder "__unchanged__" equal the source table, with 1 event repaired
