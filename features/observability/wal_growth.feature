@epic:Observability @story:O2_WAL_growth_on_an_idle_database
Feature: WAL growth on an idle database: which Debezium settings let PostgreSQL free it
  As someone who runs Debezium on a PostgreSQL server that hosts several databases
  I want to see why the replication slot of a quiet database can fill the server's disk
  So that I choose the connector settings that prevent it, and watch the right metric

  PostgreSQL writes one write-ahead log (WAL) for the whole server, every database in it.
  A replication slot makes the server keep the WAL from the slot's restart_lsn on, so the
  slot's reader can come back for it; the WAL a slot holds is the current WAL position minus
  its restart_lsn (the collector exports it as cdc_pg_slot_retained_wal_bytes). The restart_lsn
  moves forward only when the reader confirms a position (Debezium confirms the position of
  the last change it handled, once Kafka Connect has stored its offset) and decoding has passed
  a snapshot point before it: a running-transactions record, which PostgreSQL logs every 15 s
  while it is busy, and at every checkpoint.

  A slot on a database nobody writes gets no change to handle, even while another database on
  the server writes hard: a slot decodes only its own database, and since PostgreSQL 15 it does
  not even send a transaction that changed none of the tables it publishes. Its reader has
  nothing new to confirm, so the slot keeps every byte the server writes.
  heartbeat.interval.ms=1000 (cdc-spec's default) makes Debezium send a heartbeat record to
  Kafka every second, but that writes nothing to PostgreSQL and confirms nothing new.
  Two settings make the reader confirm anyway:
  * heartbeat.action.query: Debezium runs this statement in the captured database at each
    heartbeat; here it updates one row of a heartbeat table. The connector must capture that
    table too (it must be in its publication): a change to a table the slot does not publish
    reaches nobody, so it confirms nothing. The "interval only" connector below shows it: the
    heartbeat table is updated in its database too, but not published to its slot.
  * lsn.flush.mode=connector_and_driver (Debezium 3.4 and later; the default is connector):
    the JDBC driver confirms the positions of the server's keepalive messages when Debezium has
    nothing of its own to confirm.

  The scenario measures three connectors on one idle database, with the same
  heartbeat.interval.ms=1000, while another database writes. It reads every slot twice a
  second: before, during and after the writing. A connector that confirms does so a few
  seconds late (a heartbeat, an offset flush, a status update: 1 s each here), and a slot
  takes one new snapshot point at a time. So when the writing stops, the readings go on until
  every connector that confirmed positions during the writing has confirmed past its end;
  then the scenario asks for a CHECKPOINT, so that a snapshot point exists at once rather than
  up to 15 s later, and reads until those slots' restart_lsn has passed the end of the writing
  (each wait at most 10 s; the connectors that confirmed nothing are not waited for). A plot
  of what each slot held over time, and the numbers (WAL written, held at the end, maximum,
  growth per second), are attached.

  The bounds come from that mechanism. A slot whose reader confirms nothing still has the
  restart_lsn it had before the writing began, so it holds at least everything written since:
  100%. A slot whose reader confirms has, by the end, passed a snapshot point logged after the
  writing stopped, so none of the writing is behind its restart_lsn any more; it holds only
  what the server wrote after that point (the heartbeats, other tests sharing the server),
  which is not counted. Less than 5% leaves room for a snapshot point taken a moment before
  the writing ended. While the writing
  goes on, such a slot still holds up to one snapshot interval (15 s, PostgreSQL's, not a
  Debezium setting) of it, plus the seconds its reader takes to confirm: the saw-tooth in the
  plot.

  Scenario: Only a connector that confirms positions on an idle database lets the server free WAL
    Given a customers table in a fresh PostgreSQL database
    And a heartbeat table in that database, which the connectors' role may update
    And three Debezium connectors with heartbeat.interval.ms=1000 capture that database:
      | connector     | captures                      | heartbeat.action.query                                         | lsn.flush.mode       |
      | interval only | customers                     |                                                                | connector            |
      | action query  | customers, debezium_heartbeat | UPDATE public.debezium_heartbeat SET beat = now() WHERE id = 1 | connector            |
      | driver flush  | customers                     |                                                                | connector_and_driver |
    When another database on the same server writes 6 MB of WAL per second for 30 seconds
    Then the slot of "interval only" still holds all the WAL written in those 30 seconds
    And the slots of "action query" and "driver flush" hold less than 5% of it
    And Prometheus shows cdc_pg_slot_retained_wal_bytes of those slots, as measured
