@epic:MySQL_MariaDB @story:P2_MySQL_MariaDB_binlog_CDC
Feature: Binlog CDC on MariaDB: Debezium's connector next to a do-it-yourself binlog reader
  As a data engineer who has to capture changes from MySQL or MariaDB
  I want to see the Debezium way and the do-it-yourself way side by side
  So that I know what each one delivers, where it starts, and what a schema change does to it

  MySQL and MariaDB record every committed change in the binary log (binlog), the same log
  replicas read. With binlog_format=ROW each change is a row event: a write (insert), an
  update with the row before and after, or a delete with the removed row. binlog_row_image=FULL
  puts every column in those images, and binlog_row_metadata=FULL adds the column names to the
  table-map event that precedes them. A CDC client registers as a replica with its own server
  id and streams the binlog from a file and position.

  Debezium's MariaDB connector runs inside Kafka Connect. It snapshots the existing rows first
  (op "r"), then streams, and publishes one Kafka record per row change. Because row events
  carry no DDL, it writes every schema change to a schema history topic, which it creates
  itself and replays after a restart to know each table's columns at any binlog position.

  The do-it-yourself reader in cdc_support streams the binlog with mysql-replication. It starts
  from the binlog's current end (no snapshot) and hands over each transaction when its commit
  arrives. It saves the position after the last handed-over commit at most every 0.1 s, when
  the stream is idle and when it stops, so a restarted reader resumes where it stopped (after
  a crash it may repeat the last 0.1 s: at-least-once, and each event carries its position).

  Every scenario runs on a real MariaDB 10.11 server, in a database of its own. Both approaches
  connect as a least-privilege user (SELECT, RELOAD, SHOW DATABASES, REPLICATION SLAVE,
  REPLICATION CLIENT), never as root.

  Background:
    Given a customers table in a fresh MariaDB database

  Scenario Outline: Rows that exist before capture starts: <approach> <handles them>
    Given 20 customers already in the MariaDB table, generated with seed 7
    When <approach> captures the MariaDB table
    And one more customer is inserted into the MariaDB table
    Then <approach> delivers <count> snapshot events before the new customer's insert
    And every snapshot event equals its row in the MariaDB table

    Examples:
      | approach          | handles them                  | count |
      | Debezium          | reads them first as a snapshot | 20    |
      | the binlog reader | starts from now and skips them | 0     |

  Scenario Outline: <approach> delivers inserts, updates and deletes with before and after, in commit order
    Given <approach> captures the MariaDB table
    When customer 1 is inserted into the MariaDB table, renamed, then deleted
    Then <approach> delivers "c, u, d" for customer 1 in commit order
    And the update carries the old name before and the new name after
    And the delete carries the whole removed row before and nothing after
    And every binlog client of the server is the least-privilege CDC user, not root

    Examples:
      | approach          |
      | Debezium          |
      | the binlog reader |

  Scenario Outline: A column added mid-stream appears in <approach>'s events after the ALTER TABLE only
    Given <approach> captures the MariaDB table
    When 3 customers are inserted into the MariaDB table
    And the column loyalty_tier is added to the MariaDB table
    And 3 customers with a loyalty tier are inserted into the MariaDB table
    Then <approach> delivers 6 inserts
    And the 3 inserts before the ALTER TABLE have no loyalty_tier and the 3 after it have one
    And <approach> recorded the ALTER TABLE statement in its <schema record>

    Examples:
      | approach          | schema record         |
      | Debezium          | schema history topic  |
      | the binlog reader | list of schema changes |

  Scenario: The binlog reader stopped mid-workload resumes from its saved position
    Given the binlog reader captures the MariaDB table
    When a workload of 300 operations with seed 11 runs while the binlog reader is stopped after operation 100 and started again after operation 200
    Then the binlog reader delivered every committed change exactly once, in commit order
    And the table rebuilt from both readers' events equals the MariaDB table

  @slow
  Scenario Outline: A 1,000-operation workload through <approach>: the rebuilt table equals the source
    Given <approach> captures the MariaDB table
    When a workload of 1000 operations with seed 42 runs against the MariaDB table
    Then the table rebuilt from <approach>'s events equals the MariaDB table
    And the p95 lag from commit to <approach>'s delivery is under 5 seconds

    Examples:
      | approach          |
      | Debezium          |
      | the binlog reader |
