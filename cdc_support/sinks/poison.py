"""Records a sink cannot apply, for showing that none of them stops a worker.

Each kind is a Kafka record (key and value bytes) shaped like Debezium's, but with one thing
that keeps it out of any table: a row without its key column, the JSON literal ``null`` as
the value, a value its column cannot hold. :func:`with_records_at` puts such records in the
middle of a stream of good ones (:func:`~cdc_support.sinks.envelopes.customer_changes`) and
says at which offsets they land on a fresh one-partition topic.
:func:`refused_update` makes an update that is a good change event, but that a table with a
rule of its own (a CHECK constraint, a required column) refuses.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from cdc_support.sinks.dlq import ensure_topic
from cdc_support.sinks.envelopes import Changes, envelope, produce

__all__ = [
    "POISON_KINDS",
    "poison_record",
    "produce_to_new_topic",
    "refused_update",
    "with_records_at",
]

Record = tuple[bytes, bytes | None]
ROW = {
    "email": "poison@example.com",
    "full_name": "Poison Record",
    "country": "DE",
    "created_at": "2024-01-01T00:00:00Z",
}


def _key(value: Any) -> bytes:
    return json.dumps({"id": value}).encode()


def _insert(row: dict[str, Any]) -> bytes:
    return envelope("c", None, row, commit_ts=time.time())


POISON_KINDS: dict[str, Callable[[int], Record]] = {
    "a change event whose row has no id, only its record key": lambda k: (
        _key(k),
        _insert(dict(ROW)),
    ),
    "a value that is the JSON literal null": lambda k: (_key(k), b"null"),
    "a change event whose id is null": lambda k: (_key(k), _insert({"id": None, **ROW})),
    "a change event whose id does not fit in 64 bits": lambda k: (
        _key(2**70),
        _insert({"id": 2**70, **ROW}),
    ),
    "a change event whose full_name is not valid Unicode": lambda k: (
        _key(k),
        _insert({"id": k, **ROW, "full_name": "lone surrogate \ud800"}),
    ),
}
"""The Gherkin phrase of each kind -> a builder from a customer id."""


def poison_record(kind: str, key: int) -> Record:
    """The record of one poison kind (ValueError listing the kinds for an unknown one)."""
    try:
        return POISON_KINDS[kind](key)
    except KeyError:
        raise ValueError(
            f"unknown poison record {kind!r}; known kinds: {'; '.join(POISON_KINDS)}"
        ) from None


def with_records_at(
    records: Sequence[Record], extra: Sequence[Record], position: int
) -> tuple[list[Record], list[int]]:
    """``records`` with ``extra`` inserted at ``position`` (one after the other), and the
    offsets the extra records get on a fresh topic with one partition."""
    if not 0 <= position <= len(records):
        raise ValueError(f"position {position} is outside 0..{len(records)}")
    stream = [*records[:position], *extra, *records[position:]]
    return stream, list(range(position, position + len(extra)))


def refused_update(changes: Changes, position: int, column: str) -> tuple[Record, tuple[Any, ...]]:
    """An update setting ``column`` to null for a customer that no record after
    ``position`` touches (so it is the latest event of its key in any batch), and its key."""
    later = {json.loads(key)["id"] for key, _ in changes.records[position:]}
    candidates = sorted(k for k in changes.rows if k[0] not in later)
    if not candidates:
        raise ValueError(f"every customer is changed again after record {position}")
    key = candidates[0]
    before = changes.rows[key]
    after = {**before, column: None}
    return (_key(key[0]), envelope("u", before, after, commit_ts=time.time())), key


def produce_to_new_topic(bootstrap: str, topic: str, records: Sequence[Record]) -> int:
    """Create ``topic`` (one partition, so offsets follow the order of ``records``) and
    write ``records`` to it; how many were written."""
    from confluent_kafka.admin import AdminClient

    ensure_topic(AdminClient({"bootstrap.servers": bootstrap}), topic)
    return produce(bootstrap, topic, records)
