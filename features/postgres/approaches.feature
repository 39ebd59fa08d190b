@epic:PostgreSQL @story:P6_PostgreSQL_CDC_approaches_side_by_side
Feature: PostgreSQL CDC approaches side by side: logical decoding, Debezium, trigger audit, timestamp polling
  As a data engineer who has to capture changes from PostgreSQL
  I want every way of doing it checked against the same rules and measured on the same workload
  So that I pick one from what this run showed, not from what a vendor promises

  Four approaches capture the same customers table. Each sits behind one small interface
  (start, stop, the events delivered so far, close), so every rule below is one Scenario
  Outline with one row per approach, and each row states what that approach is expected to do:

  * logical decoding: a Python consumer of PostgreSQL's built-in pgoutput plugin over the
    streaming replication protocol (cdc_support.postgres, psycopg2). It reads the WAL
    through a replication slot and a publication, hands each transaction over at its commit,
    then confirms that commit's LSN to the slot, so a restarted consumer resumes right after it.
  * Debezium: the same pgoutput stream, read by Debezium's PostgreSQL connector inside Kafka
    Connect and published to a Kafka topic, which the scenario reads back.
  * trigger audit: a deferred row trigger writes each change (op, before and after as JSONB,
    transaction id, commit time) to an audit table in the source database; a reader polls it
    every 0.5 s. Its watermark is the transaction snapshot of its last read, not the highest
    audit id read: a transaction that took a lower id can commit after a higher one was read.
  * timestamp polling: a reader asks every 0.5 s for the rows whose (updated_at, id) is past
    the last row it read. The approach adds the updated_at column to the source table, with a
    BEFORE INSERT OR UPDATE trigger setting it to clock_timestamp() (so writers need not) and
    an index for the query: a change to the source schema.

  The log-based approaches set the table's REPLICA IDENTITY FULL, so updates and deletes log
  the whole old row: a table setting rather than a schema change, paid for in WAL bytes.
  "Between two polls" holds off the pollers' next query while the writes run; the log-based
  readers pause too, and the log keeps every change meanwhile.

  Every scenario runs on a real PostgreSQL 15 (and a real Kafka broker and Kafka Connect worker
  for Debezium) in a database of its own, and closes its approach at the end: no replication
  slot, publication, trigger, function, audit table or added column may be left, or the
  scenario fails. The last scenario runs one generated workload through every approach and
  attaches the comparison table: the rules as the scenarios above observed them in this run,
  and the lag, throughput and cost on the source measured on that workload.

  Background:
    Given a customers table in a fresh PostgreSQL database

  Scenario Outline: Hard deletes: <approach> <sees them>
    Given <approach> captures the customers table
    When customer 1 is inserted and <approach> has delivered it
    And customer 1 is deleted, then customer 2 is inserted as a marker
    Then by the marker, <approach> delivered "<ops>" for customer 1

    Examples:
      | approach          | sees them                                          | ops  |
      | logical decoding  | captures them, with the removed row                | c, d |
      | Debezium          | captures them, with the removed row                | c, d |
      | trigger audit     | captures them, with the removed row                | c, d |
      | timestamp polling | never sees them: the row just stops being returned | c    |

  Scenario Outline: Three updates of one row between two polls: <approach> <keeps them>
    Given <approach> captures the customers table
    When customer 1 is inserted and <approach> has delivered it
    And customer 1 is renamed 3 times between two polls of <approach>
    And customer 2 is inserted as a marker
    Then by the marker, <approach> delivered "<ops>" for customer 1
    And the updates <approach> delivered carry <names>

    Examples:
      | approach          | keeps them                                   | ops        | names                    |
      | logical decoding  | delivers every one                           | c, u, u, u | every new name, in order |
      | Debezium          | delivers every one                           | c, u, u, u | every new name, in order |
      | trigger audit     | delivers every one                           | c, u, u, u | every new name, in order |
      | timestamp polling | sees only the last: the others are collapsed | c, u       | only the last name       |

  Scenario Outline: The before-image of an update: <approach> <gives it>
    Given <approach> captures the customers table
    When customer 1 is inserted and <approach> has delivered it
    And customer 1 is renamed, then customer 2 is inserted as a marker
    Then by the marker, <approach> delivered "c, u" for customer 1
    And the before-image of the update <approach> delivered is <before>

    Examples:
      | approach          | gives it                                   | before            |
      | logical decoding  | gives the whole old row                    | the whole old row |
      | Debezium          | gives the whole old row                    | the whole old row |
      | trigger audit     | gives the whole old row                    | the whole old row |
      | timestamp polling | has none: it only sees the row as it is now | absent            |

  Scenario Outline: Stopped and started again, <approach> <resumes>
    Given <approach> captures the customers table
    When 10 customers are inserted and <approach> has delivered them
    And <approach> is stopped
    And while it is stopped, 10 more customers are inserted and the first 10 are renamed
    And <approach> is started again from its saved position
    And 5 more customers are inserted
    Then <approach> delivered every committed change <how>, in commit order per key

    Examples:
      | approach          | resumes                                                | how          |
      | logical decoding  | resumes from the LSN it confirmed to its slot          | exactly once |
      | Debezium          | resumes from the offsets Connect committed at the stop | exactly once |
      | trigger audit     | resumes from the transaction snapshot it saved         | exactly once |
      | timestamp polling | resumes from the (updated_at, id) watermark it saved   | exactly once |

  Scenario Outline: A long transaction commits after a later, shorter one: <approach> <copes>
    Polling reads rows by when they were written, but a row becomes visible when its
    transaction commits. A long transaction's row can commit with an updated_at older than
    a watermark the reader has already passed: it is never read.

    Given <approach> captures the customers table
    And customers 1 and 2 are inserted and <approach> has delivered them
    When a long transaction renames customer 1 and stays open
    And customer 2 is renamed in a short transaction and <approach> has delivered that
    And the long transaction commits, then customer 3 is inserted as a marker
    Then by the marker, customer 1's rename was <verdict> by <approach>

    Examples:
      | approach          | copes                                                     | verdict   |
      | logical decoding  | delivers its change at its commit                         | delivered |
      | Debezium          | delivers its change at its commit                         | delivered |
      | trigger audit     | delivers its change: the snapshot watermark waits for it  | delivered |
      | timestamp polling | misses it: its updated_at is older than the watermark     | missed    |

  Scenario Outline: What <approach> adds to the source database: <footprint>
    When <approach> captures the customers table
    Then the source database gained <objects>
    And <approach> <changes> the source schema
    When <approach> is closed
    Then nothing <approach> added is left in the source database

    Examples:
      | approach          | footprint                                       | objects                                                  | changes         |
      | logical decoding  | a slot and a publication, no schema change      | a publication, a replication slot, REPLICA IDENTITY FULL | does not change |
      | Debezium          | a slot and a publication, no schema change      | a publication, a replication slot, REPLICA IDENTITY FULL | does not change |
      | trigger audit     | an audit table and a trigger                    | a table, a sequence, 2 indexes, a function, a trigger    | changes         |
      | timestamp polling | a column, a trigger and an index on the table   | a column, an index, a function, a trigger                | changes         |

  @slow
  Scenario: One 1,000-operation workload through each approach: lag, throughput and cost, measured
    The same seeded workload (inserts, updates and deletes, each its own transaction) runs
    once on a table nobody captures — the baseline for the cost on the source — and once per
    approach, each on a fresh customers table of its own, one approach at a time. A marker
    row written after the workload tells when everything before it has been delivered. Lag is
    source commit time (for polling: the row's updated_at) to delivery (for Debezium: the
    Kafka record time); WAL bytes are pg_current_wal_lsn() after minus before the workload;
    extra rows are the rows the source wrote beyond the workload's own.

    When a workload of 1000 operations with seed 42 runs with no capture, then once through each approach on a table of its own
    Then the comparison table and a lag plot with one line per approach are attached, with the numbers measured in this run
    And each approach's events rebuild its source table as its rules say:
      | approach          | rebuilt table                                                                  |
      | logical decoding  | equals the source, every change delivered exactly once                         |
      | Debezium          | equals the source, every change delivered exactly once                         |
      | trigger audit     | equals the source, every change delivered exactly once                         |
      | timestamp polling | holds every surviving row's last state; any extra row is one the source deleted |
    And the p95 lag of each approach is under its documented limit:
      | approach          | limit in seconds | why                                              |
      | logical decoding  | 5                | it streams each transaction at its commit        |
      | Debezium          | 5                | it streams each transaction, through Kafka       |
      | trigger audit     | 5                | it polls every 0.5 s                             |
      | timestamp polling | 5                | it polls every 0.5 s                             |
