"""MySQL/MariaDB: addresses, connections and tables, the native binlog reader, and the two
binlog capture approaches (Debezium's connector, the native reader) behind
:class:`cdc_support.capture.CaptureApproach`."""
