@epic:Observability @story:O1_The_pipeline_in_Prometheus
Feature: The pipeline in Prometheus: Debezium's lag, the slot, the sink and its consumer lag
  As an engineer who runs a CDC pipeline
  I want its lag, its throughput and its stalls to show as metrics while it runs
  So that I see a stalled connector, a growing replication slot or a stopped sink before the
  data is late, not after

  Every stack cdc-spec starts has a Prometheus (Debian's prometheus package; on the docker
  backend the same binary in an image) scraping, every second:
  * the Kafka Connect worker, through the Prometheus JMX exporter javaagent, with rules for
    Debezium's streaming and snapshot MBeans (MilliSecondsBehindSource, events seen by
    operation, queue remaining capacity, connected) and Connect's connector and task status;
  * the Kafka broker, through the same agent (messages and bytes in per topic);
  * cdc-spec's collector, which asks the sources themselves: per replication slot the WAL
    PostgreSQL keeps for it (current WAL position minus restart_lsn) and how far its consumer
    has confirmed (minus confirmed_flush_lsn); the MariaDB binlog position; and per consumer
    group the records it has not committed yet (topic end offset minus committed offset). A
    stopped sink cannot report its own lag, so this is measured outside it;
  * every sink worker, which registers its own metrics endpoint when it starts (events
    applied, commit latency, end-to-end lag, dead letters).

  docker-compose.yml's profile `observability` adds Grafana with the "CDC pipeline" dashboard
  (docker/observability/grafana) and Loki with Promtail shipping the JSON logs. Grafana and
  Loki cannot run here (no image of theirs can be pulled), so these scenarios check the
  dashboard the way Grafana would use it: every panel's query is asked of this run's
  Prometheus and must return series, and the key panels are drawn from the same queries.

  Scenario: Debezium's lag and the sink's lag are visible in Prometheus while a workload runs
    Given a customers table in PostgreSQL with 200 rows generated with seed 21, captured by Debezium
    And a sink worker applies the customers topic to a new Delta table
    When a workload of 3000 operations with seed 21 runs against the source table, watched by Prometheus
    Then Prometheus recorded, during the workload, the connector's lag and the events it saw by operation, the slot's lag and the sink's consumer lag and commit latency
    And the dashboard's key panels over the workload are attached as plots
    And every panel of the CDC pipeline dashboard returns at least one series from this run's Prometheus

  Scenario Outline: A stopped sink shows as growing consumer lag (<source>)
    Given a customers table in <source> with 50 rows generated with seed 22, captured by Debezium
    And a sink worker applies the customers topic to a new Delta table
    When the sink worker is stopped and a workload of 1000 operations with seed 22 runs against the source table
    Then Prometheus shows the sink's consumer lag grown by at least the 1000 operations, while the connector's lag stays low
    When the sink worker is started again
    Then Prometheus shows the sink's consumer lag back at 0

    Examples:
      | source     |
      | PostgreSQL |
      | MariaDB    |
