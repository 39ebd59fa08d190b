"""Replaying change events into the table they describe, and checking their commit order.

:func:`rebuild_from_events` applies events in order: by key for a keyed table; as a multiset
of rows for a table without a primary key (an update or delete takes one row equal to its
before-image, which needs REPLICA IDENTITY FULL). Where Debezium sent its unavailable-value
placeholder (an unchanged TOASTed value), the row keeps its previous value and the event is
counted. :func:`check_commit_order` names events whose source positions go backwards.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from cdc_support.checks.integrity import Key, Row, canonical_row, rows_by_identity
from cdc_support.events import ChangeEvent, Tombstone
from cdc_support.kafka.envelope import UNAVAILABLE_VALUE_PLACEHOLDER, unavailable_value_forms

__all__ = ["KeylessReplayError", "RebuiltTable", "check_commit_order", "rebuild_from_events"]


class KeylessReplayError(ValueError):
    """A keyless table's update or delete could not be matched to one row."""


class RebuiltTable(dict[Key, dict[str, Any]]):
    """key -> row replayed from events (a plain dict), plus what the replay had to repair.

    ``unavailable_events``: events whose ``after`` carried Debezium's unavailable-value
    placeholder (a TOASTed column the update did not touch, REPLICA IDENTITY not FULL); such a
    column keeps the row's previous value. ``unavailable_unresolved``: placeholders with no
    previous value to keep (left in the row, so the comparison with the source shows them).
    ``keyless``: the events had no key, so the keys are :func:`rows_by_identity` keys
    (compare with :func:`compare_multisets`).
    """

    unavailable_events: int = 0
    unavailable_unresolved: int = 0
    keyless: bool = False


def _fill_unavailable(
    after: Mapping[str, Any], previous: Mapping[str, Any] | None, forms: list[Any]
) -> tuple[dict[str, Any], int, int]:
    """``after`` with placeholder values replaced from ``previous``; (row, kept, unresolved)."""
    row = dict(after)
    kept = unresolved = 0
    for column, value in after.items():
        if isinstance(value, str | list | dict) and value in forms:
            if previous is not None and column in previous:
                row[column] = previous[column]
                kept += 1
            else:
                unresolved += 1
    return row, kept, unresolved


def _take_equal(bag: list[dict[str, Any]], row: Row | None, event: ChangeEvent) -> dict[str, Any]:
    """Remove and return one row of ``bag`` equal to ``row`` (a keyless update/delete)."""
    what = "update" if event.op == "u" else "delete"
    where = {k: event.source[k] for k in ("lsn", "offset") if k in event.source}
    if row is None:
        raise KeylessReplayError(
            f"keyless table: the {what} at {where} has no before-image to find its row by; "
            "set REPLICA IDENTITY FULL on the table (or give it a primary key)"
        )
    wanted = canonical_row(row)
    for index, candidate in enumerate(bag):
        if canonical_row(candidate) == wanted:
            return bag.pop(index)
    raise KeylessReplayError(
        f"keyless table: no row equal to the {what}'s before-image at {where} ({wanted}); "
        "was the table's REPLICA IDENTITY FULL, and did the replay start with the snapshot?"
    )


def rebuild_from_events(
    events: Iterable[ChangeEvent | Tombstone],
    *,
    unavailable_placeholder: str | None = UNAVAILABLE_VALUE_PLACEHOLDER,
) -> RebuiltTable:
    """Replay events in order into key -> row: c/r/u set ``after``, d removes, tombstones skip.

    A column whose ``after`` value is Debezium's unavailable-value placeholder (in any of the
    forms of :func:`~cdc_support.kafka.envelope.unavailable_value_forms`; None turns this off) keeps
    the row's previous value, and the event is counted in ``unavailable_events``.

    Events with ``key=None`` (a keyless table) replay as a multiset of rows: c/r add ``after``,
    an update replaces one row equal to ``before`` by ``after``, a delete removes one row equal
    to ``before`` — KeylessReplayError (naming REPLICA IDENTITY FULL) when there is no
    before-image or no such row. Keyed and keyless events cannot be mixed in one replay.
    """
    forms = unavailable_value_forms(unavailable_placeholder) if unavailable_placeholder else []
    state = RebuiltTable()
    bag: list[dict[str, Any]] = []
    kinds: set[bool] = set()
    for event in events:
        if isinstance(event, Tombstone):
            continue
        kinds.add(event.key is None)
        if len(kinds) > 1:
            raise ValueError(
                "events mix keyed and keyless records; rebuild one table at a time "
                "(or give the keyless table's reader key_fields)"
            )
        previous: dict[str, Any] | None
        if event.key is None:
            previous = _take_equal(bag, event.before, event) if event.op in ("u", "d") else None
        else:
            previous = state.pop(event.key, None) if event.op == "d" else state.get(event.key)
        if event.op == "d" or event.after is None:
            continue
        row, kept, unresolved = _fill_unavailable(event.after, previous, forms)
        state.unavailable_events += 1 if kept or unresolved else 0
        state.unavailable_unresolved += unresolved
        if event.key is None:
            bag.append(row)
        else:
            state[event.key] = row
    if bag or kinds == {True}:
        state.update(rows_by_identity(bag))
        state.keyless = True
    return state


def _position(source: Mapping[str, Any]) -> tuple[str, tuple[Any, ...]] | None:
    """A comparable source position: PostgreSQL lsn, binlog file/pos, else Kafka offset."""
    if source.get("lsn") is not None:
        return "lsn", (source["lsn"],)
    if source.get("file") is not None and source.get("pos") is not None:
        return "binlog", (source["file"], source["pos"], source.get("row") or 0)
    offset = source.get("offset")
    if isinstance(offset, int) and offset >= 0:
        return "offset", (source.get("partition"), offset)
    return None


def check_commit_order(events: Iterable[ChangeEvent | Tombstone]) -> list[str]:
    """Problems where a key's events go backwards in source position; empty list if none.

    The position is ``source["lsn"]`` when present, else binlog ``file``/``pos``, else the
    Kafka ``(partition, offset)``. Events without a position are skipped. A redelivered
    (at-least-once) event shows up here as a step backwards.
    """
    last: dict[Key, tuple[str, tuple[Any, ...], int]] = {}
    problems: list[str] = []
    for index, event in enumerate(events):
        if isinstance(event, Tombstone):
            continue
        pos = _position(event.source)
        if pos is None:
            continue
        kind, value = pos
        prev = last.get(event.key)
        if prev is not None and prev[0] == kind:
            try:
                backwards = value < prev[1]
            except TypeError:
                backwards = False
            if backwards:
                problems.append(
                    f"key {event.key!r}: event #{index} (op {event.op!r}) at {kind} "
                    f"{_fmt(value)} comes after event #{prev[2]} at {kind} {_fmt(prev[1])}"
                )
                continue
        last[event.key] = (kind, value, index)
    return problems


def _fmt(value: tuple[Any, ...]) -> str:
    return str(value[0]) if len(value) == 1 else "/".join(str(v) for v in value)
