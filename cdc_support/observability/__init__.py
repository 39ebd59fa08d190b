"""Observability: the harness's own metrics, and reading what Prometheus gathered.

``cdc-spec collector`` measures what CDC costs at the sources from outside the pipeline and
serves it as Prometheus text; the stack's Prometheus scrapes it as job ``collector`` (the metric
names are the contract the dashboard and the features use).

* :mod:`.collector` — :class:`~cdc_support.observability.collector.HarnessCollector`, which
  queries every source at scrape time with a deadline and reports each source's health
  (``cdc_collector_*``), and ``serve`` (the HTTP endpoint); why a collector of our own rather
  than Debian's exporters is in its docstring.
* :mod:`.postgres_wal` — per replication slot, the WAL PostgreSQL keeps and the WAL not yet
  confirmed (``cdc_pg_*``).
* :mod:`.mysql_binlog` — the MariaDB/MySQL binlog file, position and total size
  (``cdc_mysql_*``).
* :mod:`.kafka_lag` — consumer-group lag per partition, measured at the broker
  (``cdc_kafka_*``).
* :mod:`.cli` — the ``cdc-spec collector`` command (options, JSON-line logs, signals).
* :mod:`.prometheus` — a small client of Prometheus' HTTP API; :mod:`.pipeline` — one
  pipeline's series (connector, slot, sink group) read from it.
* :mod:`.dashboard` — the Grafana dashboard's panels and queries as data;
  :mod:`.panel_check` — checks of those panels against a running Prometheus.
"""
