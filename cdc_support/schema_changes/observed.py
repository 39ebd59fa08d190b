"""What each path of a pipeline did with a schema change: the events' shape, the sink's table.

* :class:`FieldTypes` parses Debezium records for a
  :class:`~cdc_support.kafka.topics.TopicReader` and keeps each event's Kafka Connect field
  types (``int32`` before ``ALTER ... TYPE bigint``, ``int64`` after).
* :func:`event_shape` splits a path's events around the change (the writes after it are known
  by op and key) and says whether the events after it carry the new shape: a dropped column
  absent, the values only the new type holds exact.
* :func:`type_name`, :func:`dead_letter_key` and :func:`expected_rows` describe a sink table.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from cdc_support.checks.integrity import canonical_value, decimal_string
from cdc_support.events import ChangeEvent, Tombstone
from cdc_support.kafka.envelope import KafkaMessageLike, parse_message
from cdc_support.schema_changes.cases import BIG_KEYS, Case, writes_after
from cdc_support.sinks.columns import SOURCE_LENGTH, SOURCE_SCALE, SOURCE_TYPE
from cdc_support.sinks.dlq import count_records, read_dead_letters
from cdc_support.sinks.record_schemas import RecordSchemas
from cdc_support.source_table import Rows

__all__ = [
    "EventShape",
    "FieldTypes",
    "dead_letter_key",
    "dead_letters_of",
    "event_shape",
    "expected_rows",
    "handled_events",
    "type_name",
]


def describe_field(schema: Mapping[str, Any]) -> str:
    """A Kafka Connect field schema in a few words: ``int64``, ``string (NUMERIC(12,2))``."""
    text = str(schema.get("type"))
    if schema.get("name"):
        text += f" {schema['name']}"
    params = schema.get("parameters") or {}
    if SOURCE_TYPE in params:
        size = ",".join(str(params[p]) for p in (SOURCE_LENGTH, SOURCE_SCALE) if p in params)
        text += f" ({params[SOURCE_TYPE]}({size}))" if size else f" ({params[SOURCE_TYPE]})"
    return text


class FieldTypes:
    """A ``parse`` for a TopicReader: Debezium's parser, plus each change event's field types
    (:attr:`types`, in the order of the reader's events)."""

    def __init__(self) -> None:
        self.types: list[dict[str, str]] = []
        self._schemas = RecordSchemas()

    def __repr__(self) -> str:
        return f"FieldTypes({len(self.types)} events)"

    def __call__(self, msg: KafkaMessageLike) -> ChangeEvent | Tombstone:
        parsed = parse_message(msg)
        if isinstance(parsed, ChangeEvent):
            fields = self._schemas.of(msg.value())
            self.types.append({name: describe_field(f) for name, f in fields.items()})
        return parsed


_AFTER_OPS = {"insert": "c", "update": "u", "delete": "d"}


def _after_change(case: Case) -> set[tuple[str, int]]:
    return {(_AFTER_OPS[w.op], w.key) for w in writes_after(case)}


@dataclass
class EventShape:
    """One path's events around a change, and what the events after it carry."""

    path: str
    case: Case
    before: int
    after: int
    carried_after: list[int] = field(default_factory=list)
    carried_before: int = 0
    values: dict[int, Any] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether the events after the change carry the new shape."""
        return not self.problems

    def summary(self) -> str:
        """What the path sent after the change, in a line."""
        if self.case.drops:
            shape = f"{self.case.column} in {len(self.carried_after)} of {self.after} events"
        else:
            shape = ", ".join(f"id {k}: {str(v)[:24]}" for k, v in sorted(self.values.items()))
        typed = f"; type {self.types['before']} → {self.types['after']}" if self.types else ""
        return f"{shape}{typed}" + (f" — {'; '.join(self.problems)}" if self.problems else "")

    def as_dict(self) -> dict[str, Any]:
        """For the report."""
        return {
            "path": self.path,
            "events before the change": self.before,
            "events after the change": self.after,
            f"events before carrying {self.case.column}": self.carried_before,
            f"events after carrying {self.case.column}": self.carried_after,
            "values only the new type holds": {k: str(v) for k, v in self.values.items()},
            "Kafka Connect type": self.types,
            "problems": self.problems,
        }


def _same(expected: Any, actual: Any) -> bool:
    norm = decimal_string if not isinstance(expected, str) else (lambda v: v)
    return canonical_value(norm(expected)) == canonical_value(norm(actual))


def event_shape(
    path: str,
    case: Case,
    events: Sequence[ChangeEvent],
    types: Sequence[Mapping[str, str]] | None = None,
) -> EventShape:
    """Split ``events`` around the change and check the shape of those after it."""
    after_keys = _after_change(case)
    streamed = [(i, e) for i, e in enumerate(events) if e.op != "r"]
    after = [(i, e) for i, e in streamed if (e.op, e.key[0] if e.key else None) in after_keys]
    later = {i for i, _ in after}
    before = [(i, e) for i, e in streamed if i not in later]
    column = case.column
    shape = EventShape(path, case, len(before), len(after))
    shape.carried_before = sum(1 for _, e in before if column in (e.row or {}))
    if shape.carried_before != len(before):
        shape.problems.append(f"{len(before) - shape.carried_before} events before lack {column}")
    if case.drops:
        shape.carried_after = [e.key[0] for _, e in after if e.key and column in (e.row or {})]
        if shape.carried_after:
            shape.problems.append(f"events after the drop still carry {column}")
    for key, expected in zip(BIG_KEYS, case.big_values, strict=False):
        sent = [(e.after or {}).get(column) for _, e in after if e.key == (key,) and e.op == "c"]
        shape.values[key] = sent[0] if sent else "(no event)"
        if not sent or not _same(expected, sent[0]):
            shape.problems.append(f"id {key}: sent {shape.values[key]!r}, wrote {expected!r}")
    if types is not None and before and after:
        shape.types = {
            "before": types[before[-1][0]].get(column, "(absent)"),
            "after": types[after[-1][0]].get(column, "(absent)"),
        }
    expected_after = len(_after_change(case))
    if len(after) != expected_after:
        shape.problems.append(f"{len(after)} events after the change, {expected_after} written")
    return shape


def type_name(arrow_type: pa.DataType) -> str:
    """An Arrow type as the feature names it: ``int32``, ``decimal(8,2)``, ``string``."""
    if pa.types.is_decimal(arrow_type):
        return f"decimal({arrow_type.precision},{arrow_type.scale})"
    if pa.types.is_large_string(arrow_type):
        return "string"
    return str(arrow_type)


def dead_letter_key(letter: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """The ``id`` of a dead-lettered record (its Kafka key, with or without a schema)."""
    try:
        key = json.loads(letter.get("key") or "null")
    except ValueError:
        return None
    if isinstance(key, dict) and "payload" in key:
        key = key["payload"]
    return (key["id"],) if isinstance(key, dict) and "id" in key else None


def handled_events(metrics: Mapping[str, float]) -> float:
    """Change events a sink worker committed or dead-lettered (from its ``/metrics``)."""
    letters = sum(v for k, v in metrics.items() if k.startswith("cdc_sink_dead_letters_total"))
    return metrics.get("cdc_sink_events_applied_total", 0.0) + letters


def dead_letters_of(bootstrap: str, topic: str, worker: str) -> list[dict[str, Any]]:
    """The records on dead-letter ``topic`` that ``worker`` (its group) wrote there."""
    total = count_records(bootstrap, topic)
    letters = read_dead_letters(bootstrap, topic, count=total, timeout=30) if total else []
    return [x for x in letters if x["headers"].get("cdc.dlq.worker") == worker]


def expected_rows(source: Rows, columns: Iterable[str], without: Iterable[Any]) -> Rows:
    """The source rows but the keys in ``without``, each limited to ``columns``."""
    names, skip = list(columns), set(without)
    return {k: {c: r.get(c) for c in names} for k, r in source.items() if k not in skip}
