"""Debezium-shaped change records without Debezium: for benchmarks and tests of sinks.

:func:`customer_changes` makes the records Debezium's PostgreSQL connector writes for a
seeded workload on the generated ``customers`` table (JSON converter with
``schemas.enable=true`` on the value, a plain JSON key, a tombstone after each delete),
and the table those changes leave. :func:`produce` writes them to a Kafka topic. A sink
benchmark then measures the sink alone, on records shaped like the real ones.
:func:`produce_one` writes a single record and says where it landed.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from confluent_kafka import Producer

from cdc_support.workload import EcommerceGenerator, choose_op, normalised_mix

__all__ = [
    "CUSTOMER_FIELDS",
    "Changes",
    "RecordPosition",
    "customer_changes",
    "envelope",
    "produce",
    "produce_one",
]

CUSTOMER_FIELDS: tuple[dict[str, Any], ...] = (
    {"type": "int64", "optional": False, "field": "id"},
    {"type": "string", "optional": False, "field": "email"},
    {"type": "string", "optional": False, "field": "full_name"},
    {"type": "string", "optional": False, "field": "country"},
    {
        "type": "string",
        "optional": False,
        "name": "io.debezium.time.ZonedTimestamp",
        "version": 1,
        "field": "created_at",
    },
)


def _value_schema(fields: Sequence[dict[str, Any]], name: str) -> dict[str, Any]:
    row = {"type": "struct", "fields": list(fields), "optional": True, "name": f"{name}.Value"}
    return {
        "type": "struct",
        "fields": [
            {**row, "field": "before"},
            {**row, "field": "after"},
            {
                "type": "struct",
                "fields": [
                    {"type": "string", "optional": False, "field": "connector"},
                    {"type": "int64", "optional": False, "field": "ts_ms"},
                    {"type": "int64", "optional": True, "field": "ts_us"},
                ],
                "optional": False,
                "name": "io.debezium.connector.postgresql.Source",
                "field": "source",
            },
            {"type": "string", "optional": False, "field": "op"},
            {"type": "int64", "optional": True, "field": "ts_ms"},
        ],
        "optional": False,
        "name": f"{name}.Envelope",
    }


def _iso(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    return value


def envelope(
    op: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    *,
    commit_ts: float,
    schema: dict[str, Any] | None = None,
) -> bytes:
    """One Debezium value (``schemas.enable=true`` when ``schema`` is given)."""
    micros = int(commit_ts * 1_000_000)
    payload = {
        "before": {k: _iso(v) for k, v in before.items()} if before else None,
        "after": {k: _iso(v) for k, v in after.items()} if after else None,
        "source": {"connector": "postgresql", "ts_ms": micros // 1000, "ts_us": micros},
        "op": op,
        "ts_ms": int(time.time() * 1000),
    }
    doc = {"schema": schema, "payload": payload} if schema is not None else payload
    return json.dumps(doc, separators=(",", ":")).encode()


@dataclass
class Changes:
    """Records to produce, and the rows they leave (ISO strings for timestamps)."""

    records: list[tuple[bytes, bytes | None]] = field(default_factory=list)
    rows: dict[tuple[Any, ...], dict[str, Any]] = field(default_factory=dict)
    ops: dict[str, int] = field(default_factory=dict)

    @property
    def change_events(self) -> int:
        """Records that are change events (tombstones excluded)."""
        return sum(1 for _, value in self.records if value is not None)


def customer_changes(
    n_ops: int,
    *,
    seed: int = 42,
    initial_rows: int = 0,
    mix: Sequence[float] = (0.5, 0.35, 0.15),
    with_schema: bool = True,
    name: str = "bench.public.customers",
) -> Changes:
    """``initial_rows`` snapshot reads (op ``r``) then ``n_ops`` inserts/updates/deletes."""
    gen = EcommerceGenerator(seed)
    p_insert, p_update, _ = normalised_mix(mix)
    schema = _value_schema(CUSTOMER_FIELDS, name) if with_schema else None
    changes = Changes()
    live: list[int] = []
    now = time.time

    def emit(op: str, key: int, before: dict | None, after: dict | None) -> None:
        record_key = json.dumps({"id": key}).encode()
        changes.records.append(
            (record_key, envelope(op, before, after, commit_ts=now(), schema=schema))
        )
        changes.ops[op] = changes.ops.get(op, 0) + 1
        if op == "d":
            changes.records.append((record_key, None))

    for row in gen.customers(initial_rows):
        live.append(row["id"])
        changes.rows[(row["id"],)] = {k: _iso(v) for k, v in row.items()}
        emit("r", row["id"], None, row)
    for _ in range(n_ops):
        kind = choose_op(gen, p_insert, p_update, has_rows=bool(live))
        if kind == "insert":
            row = gen.customer()
            live.append(row["id"])
            changes.rows[(row["id"],)] = {k: _iso(v) for k, v in row.items()}
            emit("c", row["id"], None, row)
            continue
        index = gen.random.randrange(len(live))
        key = live[index]
        current = changes.rows[(key,)]
        if kind == "update":
            after = {**current, **gen.changes("customers", current)}
            changes.rows[(key,)] = {k: _iso(v) for k, v in after.items()}
            emit("u", key, current, after)
        else:
            live[index] = live[-1]
            live.pop()
            del changes.rows[(key,)]
            emit("d", key, current, None)
    return changes


def produce(
    bootstrap: str,
    topic: str,
    records: Iterable[tuple[bytes, bytes | None]],
    *,
    timeout: float = 60,
) -> int:
    """Write records to ``topic`` (keys and values as given; None is a tombstone)."""
    producer = Producer(
        {"bootstrap.servers": bootstrap, "linger.ms": 20, "enable.idempotence": True}
    )
    count = 0
    for key, value in records:
        while True:
            try:
                producer.produce(topic, key=key, value=value)
                break
            except BufferError:
                producer.poll(0.1)
        count += 1
        if count % 1000 == 0:
            producer.poll(0)
    remaining = producer.flush(timeout)
    if remaining:
        raise RuntimeError(f"{remaining} records not delivered to {topic} within {timeout}s")
    return count


class RecordPosition(NamedTuple):
    """Where a record landed in Kafka."""

    topic: str
    partition: int
    offset: int


def produce_one(
    bootstrap: str, topic: str, key: bytes | None, value: bytes | None, *, timeout: float = 30
) -> RecordPosition:
    """Write one record to ``topic`` and wait for the broker's acknowledgement."""
    delivered: list[Any] = []
    producer = Producer({"bootstrap.servers": bootstrap})
    producer.produce(
        topic, key=key, value=value, on_delivery=lambda err, msg: delivered.append((err, msg))
    )
    if producer.flush(timeout) or not delivered:
        raise RuntimeError(f"the record was not delivered to {topic} within {timeout}s")
    err, msg = delivered[0]
    if err is not None:
        raise RuntimeError(f"producing to {topic} failed: {err}")
    return RecordPosition(msg.topic(), msg.partition(), msg.offset())
