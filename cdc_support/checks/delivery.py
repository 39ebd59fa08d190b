"""Loss and duplicate accounting: what was committed vs what a CDC consumer delivered."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from cdc_support.events import ChangeEvent
from cdc_support.workload import Operation

Key = tuple[Any, ...]
T = TypeVar("T", bound=Hashable)
OP_CODES: Mapping[str, str] = {"insert": "c", "update": "u", "delete": "d"}
"""Workload operation kinds -> change-event op codes."""


@dataclass
class DeliveryReport:
    """Per key, the ops committed vs the ops delivered; lost, duplicated and reordered ones."""

    expected: int
    delivered: int
    lost: dict[Key, list[str]] = field(default_factory=dict)
    duplicated: dict[Key, list[str]] = field(default_factory=dict)
    reordered: dict[Key, tuple[list[str], list[str]]] = field(default_factory=dict)
    repeated_positions: int = 0

    @property
    def exactly_once(self) -> bool:
        """Every committed change delivered once, in commit order per key."""
        return not (self.lost or self.duplicated or self.reordered or self.repeated_positions)

    def summary(self, examples: int = 5) -> str:
        """One paragraph: counts, then a few example keys per problem."""
        lost = sum(len(v) for v in self.lost.values())
        dup = sum(len(v) for v in self.duplicated.values())
        text = (
            f"{self.expected} committed, {self.delivered} delivered: {lost} lost, {dup} "
            f"duplicated, {len(self.reordered)} keys out of order, "
            f"{self.repeated_positions} repeated source positions"
        )
        for name, problems in (
            ("lost", self.lost),
            ("duplicated", self.duplicated),
            ("reordered", self.reordered),
        ):
            if problems:
                shown = list(problems.items())[:examples]
                text += f"; {name}: " + ", ".join(f"{k}: {v}" for k, v in shown)
        return text

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready counts (for the report)."""
        return {
            "committed": self.expected,
            "delivered": self.delivered,
            "lost": sum(len(v) for v in self.lost.values()),
            "duplicated": sum(len(v) for v in self.duplicated.values()),
            "keys_out_of_order": len(self.reordered),
            "repeated_source_positions": self.repeated_positions,
            "exactly_once": self.exactly_once,
        }


@dataclass(frozen=True)
class KeyDifferences(Generic[T]):
    """Per key, what was expected but not delivered, delivered beyond what was expected
    (a repeat, or something never expected), and the same items in another order."""

    lost: dict[Key, list[T]]
    extra: dict[Key, list[T]]
    reordered: dict[Key, tuple[list[T], list[T]]]


def compare_per_key(
    expected: Mapping[Key, Sequence[T]], delivered: Mapping[Key, Sequence[T]]
) -> KeyDifferences[T]:
    """The one loss/duplicate computation: per key, expected vs delivered items (ops,
    (version, op) pairs, ...) as multisets, then their order."""
    lost: dict[Key, list[T]] = {}
    extra: dict[Key, list[T]] = {}
    reordered: dict[Key, tuple[list[T], list[T]]] = {}
    for key in expected.keys() | delivered.keys():
        want, got = list(expected.get(key, [])), list(delivered.get(key, []))
        if want == got:
            continue
        missing = list((Counter(want) - Counter(got)).elements())
        more = list((Counter(got) - Counter(want)).elements())
        if missing:
            lost[key] = missing
        if more:
            extra[key] = more
        if not missing and not more:
            reordered[key] = (want, got)
    return KeyDifferences(lost, extra, reordered)


def committed_ops(operations: Iterable[Operation]) -> list[tuple[str, Key]]:
    """A workload log as (op code, key) pairs in commit order."""
    return [(OP_CODES[o.op], o.key) for o in operations]


def _position(event: ChangeEvent) -> Hashable | None:
    """Where the source wrote the change; snapshot reads (op "r") have none of their own."""
    src = event.source
    if event.op == "r":
        return None
    if src.get("file") is not None and src.get("pos") is not None:
        return ("binlog", src["file"], src["pos"], src.get("row") or 0)
    if src.get("lsn") is not None:
        return ("lsn", src["lsn"])
    return None


def delivery_report(
    committed: Sequence[tuple[str, Key]], delivered: Sequence[ChangeEvent]
) -> DeliveryReport:
    """Compare committed (op, key) pairs with delivered events, key by key.

    A key's delivered op sequence must equal its committed one: missing ops are lost, extra
    ones duplicated, same multiset in another order is reordered. Events sharing one source
    position (binlog file/pos/row or LSN) count as repeats too.
    """
    want: dict[Key, list[str]] = defaultdict(list)
    got: dict[Key, list[str]] = defaultdict(list)
    for op, key in committed:
        want[key].append(op)
    positions: Counter[Hashable] = Counter()
    for event in delivered:
        got[event.key].append(event.op)
        pos = _position(event)
        if pos is not None:
            positions[pos] += 1
    differences = compare_per_key(want, got)
    return DeliveryReport(
        expected=len(committed),
        delivered=len(delivered),
        lost=differences.lost,
        duplicated=differences.extra,
        reordered=differences.reordered,
        repeated_positions=sum(n - 1 for n in positions.values() if n > 1),
    )
