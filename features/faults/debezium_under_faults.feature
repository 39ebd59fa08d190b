@epic:Faults @story:F1_What_a_fault_costs_lost_and_duplicated_changes
Feature: Faults under Debezium: what is lost and what is delivered twice when a component dies mid-stream
  As a team about to trust a CDC pipeline with data that matters
  I want to know what each component's death costs, measured rather than promised
  So that I know which guarantee holds: nothing lost, and duplicates only where they are allowed

  Each scenario writes 20,000 single-row transactions to a table of its own. Operation n
  inserts a row, updates one, or deletes one, and an insert or update sets the row's `seq`
  column to n, so every change has an identity: its key, its kind and its sequence number (a
  delete: its key, as a key is never reused). The fault is injected once the workload has
  committed 7,000 operations; the moment it was injected and the moment the component
  answered again are recorded.

  The changes the approach delivered are then audited against the 20,000 committed:
  * **lost**: a committed change never delivered. It must be 0, whatever died;
  * **duplicated**: a change delivered more than once. Each duplicate must be a change
    committed before the component came back (a replay), never one the audit does not know.
    Debezium is *at-least-once*: Kafka Connect commits a connector's offsets only after the
    changes were sent, and a worker that dies in between sends the same changes again when
    it restarts. Those duplicates are counted, not hidden;
  * the table rebuilt by replaying the delivered changes in order equals the source table:
    a repeated change rewrites the same value, so duplicates are harmless to an upsert;
  * through Kafka, a sink worker applies the topic to a Delta table: it must equal the source
    table, with no change applied twice (it skips the offsets its table already recorded).

  Debezium's MariaDB connector notices a lost binlog connection only when its keep-alive
  thread checks, every `connect.keep.alive.interval.ms`: 60 seconds by default, so changes
  committed after a database restart arrived about two minutes later (116 s, measured). These
  scenarios set it to 5 seconds, and their time to recover shows what that buys.

  The same faults under the native readers, without Kafka: features/faults/readers_under_faults.feature.
  The report gets the matrix of every fault and source, and for each fault a timeline of
  the events per second and the lag around it; the time to recover runs from the fault
  until, the component back, a change committed since the fault is delivered.

  @fault @slow
  Scenario Outline: Debezium on <source>, <fault>: nothing lost, duplicates <guarantee>, none applied twice
    Given a sequenced table in <source> captured by Debezium, its topic applied by a sink worker to a Delta table
    When 20000 sequence-numbered operations run and <fault> once 7000 are committed
    Then no committed change was lost, and duplicates are only what <guarantee> allows
    And the table rebuilt from the delivered changes equals the source table
    And the Delta table equals the source table, with no change applied twice
    And the fault's timeline and time to recover are in the report

    Examples:
      | source     | fault                                      | guarantee     |
      | PostgreSQL | Kafka Connect is killed with SIGKILL       | at-least-once |
      | PostgreSQL | the Kafka broker is restarted              | at-least-once |
      | PostgreSQL | the Kafka broker is killed with SIGKILL    | at-least-once |
      | PostgreSQL | the source database is restarted           | at-least-once |
      | PostgreSQL | the source database is killed with SIGKILL | at-least-once |
      | PostgreSQL | the sink worker is killed with SIGKILL     | exactly-once  |
      | MariaDB    | Kafka Connect is killed with SIGKILL       | at-least-once |
      | MariaDB    | the Kafka broker is restarted              | at-least-once |
      | MariaDB    | the Kafka broker is killed with SIGKILL    | at-least-once |
      | MariaDB    | the source database is restarted           | at-least-once |
      | MariaDB    | the source database is killed with SIGKILL | at-least-once |
      | MariaDB    | the sink worker is killed with SIGKILL     | exactly-once  |

  @fault
  Scenario: The fault matrix: every fault under Debezium measured in this run, side by side
    Then the matrix of every fault scenario of this feature is attached, and every row passed
