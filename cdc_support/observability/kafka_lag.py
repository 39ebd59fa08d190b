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

import contextlib
import re
from collections.abc import Iterable, Mapping
from typing import Any

from kafka import KafkaAdminClient, TopicPartition
from kafka.admin import OffsetSpec
from kafka.errors import KafkaError
from prometheus_client.core import GaugeMetricFamily, Metric

__all__ = [
    "CONNECT_GROUP",
    "ConsumerGroupLag",
    "assigned_partitions",
    "group_partitions",
    "lag_of",
    "wanted_group",
]

CONNECT_GROUP = "cdc-spec-connect"
"""The Kafka Connect worker group of cdc-spec's stacks (its members are workers, not readers)."""

Partition = tuple[str, int]

REQUEST_TIMEOUT_MS = 10_000
"""How long one broker request may take; a scrape that cannot wait reuses the running query."""


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
    """Reads the groups' offsets with kafka-python's admin client, kept between scrapes and
    replaced after a failed query.

    Why kafka-python and not confluent-kafka's AdminClient, which the rest of cdc-spec uses:
    librdkafka aborts the whole process when a coordinator request (DescribeGroups,
    OffsetFetch) fails while in flight — a broker restart or a request timeout under load —
    with ``rd_kafka_enq_once_del_source_return: Assertion `eonce->refcnt > 0' failed``
    (confluentinc/librdkafka#4605, still open with 2.16). A collector must outlive the broker
    it watches; kafka-python raises instead.
    """

    name = "kafka"

    def __init__(self, bootstrap: str, groups: re.Pattern[str] | None = None) -> None:
        self.bootstrap = bootstrap
        self.where = bootstrap
        self.groups = groups
        self._admin: KafkaAdminClient | None = None

    def __repr__(self) -> str:
        return f"ConsumerGroupLag({self.bootstrap})"

    def read(self, timeout: float) -> list[Metric]:
        """The families above; raises when the broker does not answer. Each request is bounded
        by :data:`REQUEST_TIMEOUT_MS`, not ``timeout``: a scrape that cannot wait for the query
        reuses it (see the collector)."""
        try:
            return self._read(self._client())
        except Exception:
            self.close()  # the next scrape starts from a new connection
            raise

    def close(self) -> None:
        """Close the client's connections."""
        admin, self._admin = self._admin, None
        if admin is not None:
            with contextlib.suppress(Exception):
                admin.close()

    def _client(self) -> KafkaAdminClient:
        if self._admin is None:
            self._admin = KafkaAdminClient(
                bootstrap_servers=self.bootstrap,
                client_id="cdc-spec-collector",
                request_timeout_ms=REQUEST_TIMEOUT_MS,
            )
        return self._admin

    def _read(self, admin: KafkaAdminClient) -> list[Metric]:
        groups = sorted(
            g["group_id"] for g in admin.list_groups() if wanted_group(g["group_id"], self.groups)
        )
        if not groups:
            return _families({}, {}, {})
        committed = _group_offsets(admin, groups)
        described = admin.describe_groups(groups)
        assigned = {g: assigned_partitions(described.get(g)) for g in groups}
        topics = {t for g in groups for t, _ in [*committed.get(g, {}), *assigned[g]]}
        partitions = _partition_counts(admin, topics)
        per_group = {
            g: group_partitions(committed.get(g, {}), assigned[g], partitions) for g in groups
        }
        wanted = {tp for parts in per_group.values() for tp in parts}
        unread = {tp for parts in per_group.values() for tp, c in parts.items() if c is None}
        ends = _offsets(admin, wanted, OffsetSpec.LATEST)
        starts = _offsets(admin, unread, OffsetSpec.EARLIEST)
        return _families(per_group, starts, ends)


def _group_offsets(admin: KafkaAdminClient, groups: list[str]) -> dict[str, dict[Partition, int]]:
    """Committed offsets per group: one request for all, else one per group, leaving out a
    group that went away since the listing."""
    try:
        answers = admin.list_group_offsets(dict.fromkeys(groups))
    except KafkaError:
        answers = {}
        for group in groups:
            with contextlib.suppress(KafkaError):
                answers.update(admin.list_group_offsets({group: None}))
    return {
        group: {(tp.topic, tp.partition): om.offset for tp, om in offsets.items() if om.offset >= 0}
        for group, offsets in answers.items()
    }


def assigned_partitions(description: Mapping[str, Any] | None) -> list[Partition]:
    """The partitions assigned to the group's members (none when it has no members)."""
    if not description or description.get("error"):
        return []
    return [
        (block["topic"], p)
        for member in description.get("members") or []
        for block in (member.get("member_assignment") or {}).get("assigned_partitions") or []
        for p in block["partitions"]
    ]


def _partition_counts(admin: KafkaAdminClient, topics: set[str]) -> dict[str, int]:
    """Partition count per existing topic of ``topics``."""
    if not topics:
        return {}
    existing = set(admin.list_topics()) & topics
    if not existing:
        return {}
    return {
        t["name"]: len(t["partitions"])
        for t in admin.describe_topics(sorted(existing))
        if t["error_code"] == 0
    }


def _offsets(
    admin: KafkaAdminClient, partitions: set[Partition], spec: Any
) -> dict[Partition, int]:
    """Offsets of ``partitions``."""
    if not partitions:
        return {}
    request = {TopicPartition(topic, p): spec for topic, p in sorted(partitions)}
    return {
        (tp.topic, tp.partition): answer.offset
        for tp, answer in admin.list_partition_offsets(request).items()
    }


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
