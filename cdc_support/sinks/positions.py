"""Kafka positions of a sink: the next offset to read per (topic, partition), and their JSON.

A sink records its position with every table commit (Delta: app transactions; Iceberg:
snapshot properties) as :func:`positions_to_json`; a worker resumes from it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

__all__ = ["Positions", "TopicPartition", "positions_from_json", "positions_to_json"]

TopicPartition = tuple[str, int]
Positions = dict[TopicPartition, int]
"""Next offset to read per (topic, partition): everything below it has been applied."""


def positions_to_json(positions: Mapping[TopicPartition, int]) -> str:
    """``{("t", 0): 42}`` -> ``'{"t": {"0": 42}}'`` (stable order)."""
    nested: dict[str, dict[str, int]] = {}
    for (topic, partition), offset in sorted(positions.items()):
        nested.setdefault(topic, {})[str(partition)] = int(offset)
    return json.dumps(nested, sort_keys=True, separators=(",", ":"))


def positions_from_json(text: str | None) -> Positions:
    """The inverse of :func:`positions_to_json`; empty for None or ``""``."""
    if not text:
        return {}
    nested = json.loads(text)
    if not isinstance(nested, dict):
        raise ValueError(f"offsets must be a JSON object of topic -> partition -> offset: {text}")
    return {
        (topic, int(partition)): int(offset)
        for topic, partitions in nested.items()
        for partition, offset in partitions.items()
    }
