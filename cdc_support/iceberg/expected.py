"""What a write should have changed, key by key, and how derived events differ from it.

A test keeps a model of its table (key -> row). The changes a write *should* have made are
the per-key difference of the model before and after it; a derived changelog is checked
against them key by key (nothing lost, nothing extra, one event per key).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cdc_support.checks.integrity import canonical_row
from cdc_support.events import ChangeEvent

__all__ = ["Expected", "Key", "Row", "expected_changes", "mismatches", "same_row"]

Key = tuple[Any, ...]
Row = dict[str, Any]
Expected = dict[Key, tuple[str, Row | None, Row | None]]
"""Per key: the op (c, u, d), the before image and the after image."""


def same_row(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> bool:
    """Equal rows (compared canonically), or both missing."""
    if a is None or b is None:
        return a is b
    return canonical_row(dict(a)) == canonical_row(dict(b))


def expected_changes(before: Mapping[Key, Row], after: Mapping[Key, Row]) -> Expected:
    """Per key, how ``before`` became ``after`` (unchanged keys left out)."""
    changes: Expected = {}
    for key in sorted(before.keys() | after.keys()):
        old, new = before.get(key), after.get(key)
        if old is None and new is not None:
            changes[key] = ("c", None, new)
        elif new is None and old is not None:
            changes[key] = ("d", old, None)
        elif not same_row(old, new):
            changes[key] = ("u", old, new)
    return changes


def mismatches(events: Sequence[ChangeEvent], expected: Expected) -> list[str]:
    """Per-key differences between derived events and expected changes; empty if equal."""
    problems: list[str] = []
    by_key: dict[Key, list[ChangeEvent]] = {}
    for event in events:
        by_key.setdefault(event.key, []).append(event)
    for key, found in by_key.items():
        if len(found) > 1:
            problems.append(f"key {key}: {len(found)} events {[e.op for e in found]}, expected 1")
    for key, (op, before, after) in expected.items():
        found = by_key.get(key)
        if not found:
            problems.append(f"key {key}: no event, expected op {op!r} (lost)")
            continue
        event = found[0]
        if event.op != op:
            problems.append(f"key {key}: op {event.op!r}, expected {op!r}")
        if not same_row(event.before, before):
            problems.append(f"key {key}: before {event.before}, expected {before}")
        if not same_row(event.after, after):
            problems.append(f"key {key}: after {event.after}, expected {after}")
    for key in by_key.keys() - expected.keys():
        problems.append(f"key {key}: unexpected {by_key[key][0].op!r} event (nothing changed)")
    return problems
