"""cdc_support: the domain library of cdc-spec (no pytest), usable from a script or a notebook.

Laid out by source, mirroring ``features/``:

* :mod:`.events` — :class:`~cdc_support.events.ChangeEvent`, the one change-event model every
  approach is normalised into; :mod:`.naming` — names of what a scenario creates;
  :mod:`.workload` — the seeded Faker workload; :mod:`.waiting` — polling with a deadline.
* :mod:`.checks` — integrity (count, checksum, per-key diff), delivery (loss and duplicate
  audit) and lag (percentiles, plots).
* :mod:`.kafka` — the Kafka Connect REST client, Debezium connector configs and the checks run
  before registering one, the Debezium envelope parser, topic readers.
* :mod:`.postgres` — the PostgreSQL approaches (logical decoding, Debezium, trigger audit,
  timestamp polling) behind one interface, and their comparison.
* :mod:`.mysql` — MySQL/MariaDB connections and the native binlog reader.
* :mod:`.deltalake` — Delta Lake's Change Data Feed; :mod:`.iceberg` — Iceberg snapshot diffs.
* :mod:`.sinks` — the ``cdc-spec sink`` worker (Kafka → Delta Lake / Iceberg).
* :mod:`.observability` — the ``cdc-spec collector`` (slot lag, binlog position, consumer-group
  lag), a Prometheus query client, the "CDC pipeline" dashboard as data; :mod:`.logs` — JSON
  log lines.
* :mod:`.bench` — the benchmarks ``make bench`` runs; :mod:`.cli` — the ``cdc-spec`` command.
"""
