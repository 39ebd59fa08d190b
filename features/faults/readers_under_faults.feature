@epic:Faults @story:F1_What_a_fault_costs_lost_and_duplicated_changes
Feature: Faults under the native readers: what is lost and what is read twice when the database or the reader dies
  As a team that reads changes without Kafka Connect (logical decoding, the binlog)
  I want to know what a database restart or a killed reader costs, measured rather than promised
  So that I know the reader loses nothing, and what it reads twice after a restart

  The same workload as features/faults/debezium_under_faults.feature: 20,000 single-row
  transactions, each change with an identity (its key, its kind and its sequence number), and
  the fault injected once 7,000 are committed. `cdc-spec reader` runs as a process of its own
  and writes what it read to a JSON-lines file; the audit counts what was lost (must be 0) and
  what was read twice.

  Both readers are *at-least-once*: the logical decoding reader confirms the slot's position
  (its confirmed LSN) and the binlog reader writes its position file only after the changes
  are written out. A reader killed in between reads the same changes again when it starts.
  The table rebuilt by replaying what was read, in order, must equal the source table.

  @fault @slow
  Scenario Outline: <approach> on <source>, <fault>: nothing lost, duplicates <guarantee>
    Given a sequenced table in <source> captured by <approach> running as a process of its own
    When 20000 sequence-numbered operations run and <fault> once 7000 are committed
    Then no committed change was lost, and duplicates are only what <guarantee> allows
    And the table rebuilt from the delivered changes equals the source table
    And the fault's timeline and time to recover are in the report

    Examples:
      | source     | approach          | fault                                      | guarantee     |
      | PostgreSQL | logical decoding  | the source database is restarted           | at-least-once |
      | PostgreSQL | logical decoding  | the source database is killed with SIGKILL | at-least-once |
      | PostgreSQL | logical decoding  | the reader is killed with SIGKILL          | at-least-once |
      | MariaDB    | the binlog reader | the source database is restarted           | at-least-once |
      | MariaDB    | the binlog reader | the source database is killed with SIGKILL | at-least-once |
      | MariaDB    | the binlog reader | the reader is killed with SIGKILL          | at-least-once |

  @fault
  Scenario: The fault matrix: every fault under the native readers measured in this run, side by side
    Then the matrix of every fault scenario of this feature is attached, and every row passed
