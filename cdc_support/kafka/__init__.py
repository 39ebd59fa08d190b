"""Kafka and Kafka Connect: the Connect REST client, Debezium connector configs and checks,
the Debezium envelope parser and topic readers."""
