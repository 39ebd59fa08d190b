@epic:PostgreSQL @story:P1_PostgreSQL_logical_replication_through_Debezium
Feature: Debezium PostgreSQL connector (pgoutput → Kafka)
  As someone learning change data capture
  I want to see what Debezium's PostgreSQL connector publishes for each change
  So that I know what a consumer of its topics can rely on

  PostgreSQL writes every change to its write-ahead log (WAL). With wal_level=logical, a
  replication slot lets a client read those changes decoded by the built-in pgoutput plugin.
  Debezium runs inside Kafka Connect, reads the slot, and publishes one Kafka record per row
  change, keyed by the primary key, in an envelope: op (r = snapshot read, c = create,
  u = update, d = delete), before, after, and source (LSN, transaction id, commit time).
  Every scenario runs on a real PostgreSQL, Kafka broker and Connect worker, in a database,
  slot, publication and topic prefix of its own.

  Background:
    Given a customers table in a fresh PostgreSQL database

  Scenario: Rows that exist before the connector starts arrive as a snapshot
    Given 20 customers generated with seed 7
    When a Debezium connector captures the customers table
    Then the customers topic holds 20 events with op "r"
    And every snapshot event's after-image equals its source row

  Scenario: Debezium streams as a replication role that can read the captured table, no more
    Debezium needs a role with LOGIN and REPLICATION (to create its replication slot and stream
    from it) and SELECT on the tables it captures (for the snapshot) — not a superuser. The
    publication is created beforehand by the tables' owner (publication.autocreate.mode=disabled),
    so the role needs no ownership of the tables and no CREATE on the database.

    Given a Debezium connector captures the customers table
    Then the connector streams as the replication role, not as a superuser
    And the replication role may read the customers table but not write it

  Scenario: Inserts, updates and deletes arrive with op, before and after, in commit order
    Given the customers table has REPLICA IDENTITY FULL
    And a Debezium connector captures the customers table
    When I insert customer 1, update its name, then delete it
    Then the customers topic holds the events "c, u, d" for customer 1 in that order
    And the update event has the old name before and the new name after
    And the delete event has the row before and no after

  Scenario Outline: REPLICA IDENTITY <identity> decides the before-image of updates and deletes
    PostgreSQL logs the old row of an update or delete only as far as the table's
    REPLICA IDENTITY asks: FULL logs the whole old row, DEFAULT only the primary key
    (and for an update that does not change the key, nothing at all). Debezium fills the
    NOT NULL columns it was not given with their type's empty value ("" or the epoch), so a
    consumer cannot tell a key-only before-image by nulls.

    Given the customers table has REPLICA IDENTITY <identity>
    And a Debezium connector captures the customers table
    When I insert customer 1, update its name, then delete it
    Then the update event's before-image is <update before>
    And the delete event's before-image is <delete before>

    Examples:
      | identity | update before    | delete before               |
      | FULL     | the full old row | the full old row            |
      | DEFAULT  | absent           | the key, other columns empty |

  Scenario Outline: With tombstones.on.delete=<setting>, a delete is <what follows>
    A tombstone is a record with the deleted key and a null value: it lets Kafka's log
    compaction forget the key. Consumers must expect it after every delete by default.

    Given a Debezium connector captures the customers table with tombstones.on.delete=<setting>
    When I insert customer 1, then delete it
    Then the delete event is <what follows>

    Examples:
      | setting | what follows                          |
      | true    | followed by a tombstone for key 1     |
      | false   | the last record, with no tombstone    |

  @slow
  Scenario: A 1,000-operation mixed workload rebuilds to the source table, with p95 lag under 5 s
    Given 200 customers generated with seed 42
    And a Debezium connector captures the customers table
    And the snapshot of 200 customers has arrived
    When a mixed workload of 1000 operations runs against customers with seed 42
    Then the table rebuilt from the customers topic equals the source table
    And the p95 lag of the workload's events is under 5 seconds
