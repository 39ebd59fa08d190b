"""Checks a sink worker makes before it consumes: Kafka answers, and its topic exists.

An unreachable bootstrap server would otherwise show as half a minute of librdkafka log lines
and then "Failed to get metadata"; a topic that does not exist would leave the worker idle
without a word. Here both take one metadata request with a short deadline, from a client whose
librdkafka log goes nowhere, and end in one line that names the option to change.
"""

from __future__ import annotations

import logging

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from cdc_support.sinks.errors import SinkConfigError

__all__ = ["KAFKA_CHECK_SECONDS", "kafka_partitions", "missing_topic_message"]

KAFKA_CHECK_SECONDS = 5.0

_quiet = logging.getLogger("cdc_support.sinks.librdkafka")
_quiet.addHandler(logging.NullHandler())
_quiet.propagate = False


def kafka_partitions(
    bootstrap: str, *, timeout: float = KAFKA_CHECK_SECONDS
) -> dict[str, list[int]]:
    """Every topic on the cluster with its partitions; SinkConfigError naming ``--bootstrap``
    when no broker answers within ``timeout`` seconds (librdkafka's own log is silenced)."""
    admin = AdminClient({"bootstrap.servers": bootstrap, "logger": _quiet})
    try:
        metadata = admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        error = exc.args[0] if exc.args else exc
        detail = error.str() if hasattr(error, "str") else str(error)
        raise SinkConfigError(
            f"no Kafka broker answered at --bootstrap {bootstrap} within {timeout:g} s "
            f"({detail}): is the broker running, and is --bootstrap its host:port?"
        ) from None
    return {
        name: sorted(topic.partitions)
        for name, topic in metadata.topics.items()
        if topic.error is None
    }


def missing_topic_message(topic: str, bootstrap: str, *, required: bool) -> str:
    """What to say about a topic that does not exist (one line naming what creates it)."""
    creator = (
        "Debezium (Kafka Connect) creates it when its connector captures the table's first "
        "change, or create it yourself"
    )
    if required:
        return (
            f"topic {topic!r} does not exist on {bootstrap}: {creator}; or leave out "
            "--require-topic to wait for it"
        )
    return (
        f"topic {topic!r} does not exist on {bootstrap} yet; waiting for it ({creator}; "
        "--require-topic makes this an error)"
    )
