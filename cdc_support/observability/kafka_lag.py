"""Kafka for the collector: how far each consumer group is behind, measured at the broker.

::

    cdc_kafka_consumer_group_lag_messages{group, topic, partition}  end offset - committed
    cdc_kafka_consumer_group_committed_offset{group, topic, partition}
    cdc_kafka_topic_end_offset{topic, partition}     (the topics of those groups)

A group's partitions are every partition of every topic it has committed on or that is
assigned to one of its members; a partition with no commit yet counts from its start offset
(the group will read it all), and has no committed-offset sample. Groups: every one except
Kafka Connect's own (:data:`CONNECT_GROUP`) and the ``_``-prefixed internal ones, narrowed by
a regex the whole group id must match.

Measured here rather than in the consumer because a consumer that stopped or hangs cannot
report its own lag — and that is when the lag matters.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec
from prometheus_client.core import GaugeMetricFamily, Metric

__all__ = ["CONNECT_GROUP", "ConsumerGroupLag", "group_partitions", "lag_of", "wanted_group"]

CONNECT_GROUP = "cdc-spec-connect"
"""The Kafka Connect worker group of cdc-spec's stacks (its members are workers, not readers)."""

Partition = tuple[str, int]


def wanted_group(group: str, pattern: re.Pattern[str] | None) -> bool:
    """Whether the collector reports ``group`` (``pattern`` must match the whole id)."""
    if group == CONNECT_GROUP or group.startswith("_"):
        return False
    return pattern is None or pattern.fullmatch(group) is not None


def lag_of(*, committed: int | None, start: int, end: int) -> int:
    """Records the group has still to read in a partition (from ``start`` when no commit)."""
    return max(0, end - (start if committed is None else committed))


def group_partitions(
    committed: Mapping[Partition, int],
    assigned: Iterable[Partition],
    partitions: Mapping[str, int],
) -> dict[Partition, int | None]:
    """Every partition of the topics a group committed on or is assigned, with its committed
    offset (None: none yet); ``partitions`` is the partition count per existing topic."""
    topics = {topic for topic, _ in committed} | {topic for topic, _ in assigned}
    return {
        (topic, p): committed.get((topic, p))
        for topic in sorted(topics)
        if topic in partitions
        for p in range(partitions[topic])
    }


class ConsumerGroupLag:
    """Reads the groups' offsets with one AdminClient kept between scrapes (librdkafka
    reconnects by itself)."""

    name = "kafka"

    def __init__(self, bootstrap: str, groups: re.Pattern[str] | None = None) -> None:
        self.bootstrap = bootstrap
        self.where = bootstrap
        self.groups = groups
        self._admin: AdminClient | None = None

    def __repr__(self) -> str:
        return f"ConsumerGroupLag({self.bootstrap})"

    def _client(self) -> AdminClient:
        if self._admin is None:
            self._admin = AdminClient(
                {
                    "bootstrap.servers": self.bootstrap,
                    "client.id": "cdc-spec-collector",
                    # an unreachable broker is reported once as source_up=0, not by librdkafka
                    # on every reconnect attempt
                    "log_level": 0,
                }
            )
        return self._admin

    def read(self, timeout: float) -> list[Metric]:
        """The families above; raises when the broker does not answer."""
        admin = self._client()
        listing = admin.list_consumer_groups(request_timeout=timeout).result(timeout)
        if listing.errors and not listing.valid:
            raise listing.errors[0]
        groups = sorted(g.group_id for g in listing.valid if wanted_group(g.group_id, self.groups))
        offsets = {
            g: admin.list_consumer_group_offsets(
                [ConsumerGroupTopicPartitions(g)], request_timeout=timeout
            )[g]
            for g in groups
        }
        described = (
            admin.describe_consumer_groups(groups, request_timeout=timeout) if groups else {}
        )
        metadata = admin.list_topics(timeout=timeout)
        partitions = {
            name: len(topic.partitions)
            for name, topic in metadata.topics.items()
            if topic.error is None
        }
        per_group: dict[str, dict[Partition, int | None]] = {}
        for group in groups:
            try:
                committed = _committed(offsets[group].result(timeout))
                assigned = _assigned(described[group].result(timeout))
            except KafkaException:
                continue  # the group went away between the listing and these requests
            per_group[group] = group_partitions(committed, assigned, partitions)
        wanted = {tp for parts in per_group.values() for tp in parts}
        unread = {tp for parts in per_group.values() for tp, c in parts.items() if c is None}
        ends = _offsets(admin, wanted, OffsetSpec.latest(), timeout)
        starts = _offsets(admin, unread, OffsetSpec.earliest(), timeout)
        return _families(per_group, starts, ends)

    def close(self) -> None:
        """Drop the client (librdkafka closes its connections)."""
        self._admin = None


def _committed(result: Any) -> dict[Partition, int]:
    return {
        (tp.topic, tp.partition): tp.offset
        for tp in result.topic_partitions or []
        if tp.error is None and tp.offset >= 0
    }


def _assigned(description: Any) -> list[Partition]:
    return [
        (tp.topic, tp.partition)
        for member in description.members or []
        if member.assignment is not None
        for tp in member.assignment.topic_partitions or []
    ]


def _offsets(
    admin: AdminClient, partitions: set[Partition], spec: OffsetSpec, timeout: float
) -> dict[Partition, int]:
    """Offsets of ``partitions`` (one without a leader right now is left out)."""
    if not partitions:
        return {}
    request = {TopicPartition(topic, p): spec for topic, p in sorted(partitions)}
    offsets: dict[Partition, int] = {}
    for tp, future in admin.list_offsets(request, request_timeout=timeout).items():
        try:
            offsets[(tp.topic, tp.partition)] = future.result(timeout).offset
        except KafkaException:
            continue
    return offsets


def _families(
    per_group: Mapping[str, Mapping[Partition, int | None]],
    starts: Mapping[Partition, int],
    ends: Mapping[Partition, int],
) -> list[Metric]:
    labels = ["group", "topic", "partition"]
    lag = GaugeMetricFamily(
        "cdc_kafka_consumer_group_lag_messages",
        "Records the group has still to read: end offset - committed offset (start offset "
        "when it has committed none)",
        labels=labels,
    )
    committed_family = GaugeMetricFamily(
        "cdc_kafka_consumer_group_committed_offset", "The group's committed offset", labels=labels
    )
    end_family = GaugeMetricFamily(
        "cdc_kafka_topic_end_offset",
        "Offset the next record of the partition will get",
        labels=["topic", "partition"],
    )
    for group, parts in sorted(per_group.items()):
        for (topic, p), committed in sorted(parts.items()):
            end, start = ends.get((topic, p)), starts.get((topic, p))
            if end is not None and (committed is not None or start is not None):
                lag.add_metric(
                    [group, topic, str(p)], lag_of(committed=committed, start=start or 0, end=end)
                )
            if committed is not None:
                committed_family.add_metric([group, topic, str(p)], committed)
    for (topic, p), end in sorted(ends.items()):
        end_family.add_metric([topic, str(p)], end)
    return [lag, committed_family, end_family]
