@epic:PostgreSQL @story:P1_PostgreSQL_logical_replication_through_Debezium
Feature: Tables without a primary key through Debezium (keyless tables)
  As a data engineer whose database has tables without a primary key
  I want to see what Debezium publishes for them, and what PostgreSQL needs first
  So that I capture them without breaking the application that writes to them

  A Kafka record's key is normally the row's primary key. A table without one gives records
  with a null key, and a null-key tombstone after a delete: a consumer can tell rows apart
  only by their whole content, and equal rows not at all. Replaying such a topic rebuilds a
  multiset of rows: an update or a delete finds one row equal to its before-image, which
  PostgreSQL logs in full only with REPLICA IDENTITY FULL.

  With the default replica identity (the primary key, here none) PostgreSQL goes further: as
  soon as a publication that publishes updates and deletes covers the table, it refuses the
  application's own UPDATE and DELETE on it. So the connector factory checks every table's
  replica identity before it makes a publication or a connector, and names the fix.

  Scenario: A keyless table with REPLICA IDENTITY FULL streams null-key events and rebuilds exactly
    Given a keyless notes table with REPLICA IDENTITY FULL holding 3 notes, two of them equal
    And Debezium captures the keyless notes table
    When I insert a note, change one of the two equal notes, then delete the other one
    Then the notes topic holds the events "r, r, r, c, u, d", every one with a null key
    And the update's and the delete's before-images are whole rows
    And the delete is followed by a tombstone with a null key
    And the notes rebuilt from the topic as a multiset of rows equal the source table

  Scenario: A keyless table with the default replica identity is refused before any connector is made
    Given a keyless notes table with REPLICA IDENTITY DEFAULT holding 3 notes, two of them equal
    When Debezium is asked to capture the keyless notes table
    Then the request is refused with a one-line error naming "ALTER TABLE public.notes REPLICA IDENTITY FULL"
    And no connector, replication slot or publication was made
    And PostgreSQL itself refuses to update a note once a publication covers the notes table
