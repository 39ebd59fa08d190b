"""Loss and duplicate accounting: what was committed vs what a CDC consumer delivered.

:func:`delivery_report` compares a workload's (op, key) pairs with delivered events key by key;
:class:`DeliveryAudit` audits a sequence-numbered workload
(:mod:`cdc_support.faults.workload`), where every change has an identity, so each lost,
duplicated or unexpected change is named. Both rest on :func:`compare_per_key`.
"""

from __future__ import annotations

import contextlib
from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar

from cdc_support.events import ChangeEvent
from cdc_support.workload import Operation

if TYPE_CHECKING:
    from cdc_support.faults.workload import SequencedOp

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


class Change(NamedTuple):
    """A change's identity: key, kind ("c", "u", "d") and the ``seq`` it wrote (None for a
    delete: a key is never reused, so it is deleted once)."""

    key: Key
    op: str
    seq: Any

    def __str__(self) -> str:
        key = self.key[0] if len(self.key) == 1 else self.key
        return f"{self.op} id={key}" + ("" if self.op == "d" else f" seq={self.seq}")


@dataclass
class AuditReport:
    """What a consumer delivered of a sequenced workload's committed changes.

    ``lost``: committed, never delivered (in commit order); ``duplicated``: committed
    changes delivered more than once, with the number of extra deliveries; ``unexpected``:
    delivered changes never committed (once per delivery); ``reordered``: keys whose changes
    came, each at its first delivery, in another order than committed. Snapshot reads (op
    "r") are counted apart and audited no further.
    """

    committed: int
    delivered: int
    snapshot_reads: int
    lost: list[Change]
    duplicated: dict[Change, int]
    unexpected: list[Change]
    reordered: list[Key]
    latest_duplicated_commit: float | None = None
    """The commit time of the latest committed change delivered more than once: a replay
    repeats what committed before the consumer came back."""

    @property
    def duplicates(self) -> int:
        """Extra deliveries of committed changes."""
        return sum(self.duplicated.values())

    @property
    def at_least_once(self) -> bool:
        """Every committed change delivered, nothing delivered that was not committed."""
        return not (self.lost or self.unexpected)

    @property
    def exactly_once(self) -> bool:
        """Every committed change delivered once, in commit order per key."""
        return self.at_least_once and not (self.duplicated or self.reordered)

    def summary(self, examples: int = 5) -> str:
        """One paragraph: counts, then a few examples per problem."""
        text = (
            f"{self.committed} committed, {self.delivered} delivered "
            f"(+{self.snapshot_reads} snapshot reads): {len(self.lost)} lost, "
            f"{self.duplicates} duplicated ({len(self.duplicated)} changes delivered more "
            f"than once), {len(self.unexpected)} unexpected, {len(self.reordered)} keys out "
            "of order"
        )
        for name, shown in self._examples(examples).items():
            if shown:
                text += f"; {name}: " + ", ".join(shown)
        return text

    def _examples(self, examples: int) -> dict[str, list[str]]:
        duplicated = list(self.duplicated.items())[:examples]
        return {
            "lost": [str(c) for c in self.lost[:examples]],
            "duplicated": [f"{c} x{extra + 1}" for c, extra in duplicated],
            "unexpected": [str(c) for c in self.unexpected[:examples]],
            "out of order": [str(k) for k in self.reordered[:examples]],
        }

    def as_dict(self, examples: int = 5) -> dict[str, Any]:
        """JSON-ready counts and a few examples (for the report)."""
        return {
            "committed": self.committed,
            "delivered": self.delivered,
            "snapshot_reads": self.snapshot_reads,
            "lost": len(self.lost),
            "duplicated": self.duplicates,
            "duplicated_changes": len(self.duplicated),
            "unexpected": len(self.unexpected),
            "keys_out_of_order": len(self.reordered),
            "at_least_once": self.at_least_once,
            "exactly_once": self.exactly_once,
            "latest_duplicated_commit": self.latest_duplicated_commit,
            "examples": self._examples(examples),
        }


class DeliveryAudit:
    """Audits delivered change events against a sequenced workload's committed operations.

    A change's identity is (key, "c"|"u", ``after[seq_column]``) or (key, "d"), so a
    repeat is told from a new change. Operations committed before capture started belong
    to its snapshot: leave them out of ``ops``.
    """

    def __init__(self, ops: Sequence[SequencedOp], *, seq_column: str = "seq") -> None:
        self.seq_column = seq_column
        self._committed: dict[Change, SequencedOp] = {}
        self._want: dict[Key, list[Change]] = defaultdict(list)
        for op in ops:
            change = Change(op.key, op.op, None if op.op == "d" else op.seq)
            self._committed[change] = op
            self._want[op.key].append(change)

    def __repr__(self) -> str:
        return f"DeliveryAudit({len(self._committed)} committed changes)"

    def identity(self, event: ChangeEvent) -> Change:
        """The change an event delivers."""
        if event.op == "d":
            return Change(event.key or (), "d", None)
        seq = (event.after or {}).get(self.seq_column)
        with contextlib.suppress(TypeError, ValueError):  # else unexpected, shown as it is
            seq = int(seq)
        return Change(event.key or (), event.op, seq)

    def audit(self, events: Iterable[ChangeEvent]) -> AuditReport:
        """Compare the delivered events with the committed changes, key by key."""
        got: dict[Key, list[Change]] = defaultdict(list)
        delivered = reads = 0
        for event in events:
            if event.op == "r":
                reads += 1
                continue
            delivered += 1
            got[event.key or ()].append(self.identity(event))
        differences = compare_per_key(self._want, got)
        extra = [c for key in got for c in differences.extra.get(key, [])]  # delivery order
        duplicated = Counter(c for c in extra if c in self._committed)
        ordered_duplicates = sorted(duplicated, key=lambda c: self._committed[c].seq)
        return AuditReport(
            committed=len(self._committed),
            delivered=delivered,
            snapshot_reads=reads,
            lost=sorted(
                (c for changes in differences.lost.values() for c in changes),
                key=lambda c: self._committed[c].seq,
            ),
            duplicated={c: duplicated[c] for c in ordered_duplicates},
            unexpected=[c for c in extra if c not in self._committed],
            reordered=[key for key, changes in got.items() if not self._in_order(key, changes)],
            latest_duplicated_commit=max(
                (self._committed[c].committed_at for c in duplicated), default=None
            ),
        )

    def _in_order(self, key: Key, delivered: list[Change]) -> bool:
        """Whether a key's committed changes, each at its first delivery, came in commit
        order (what compare_per_key calls reordered, and also with losses or repeats)."""
        first = list(dict.fromkeys(c for c in delivered if c in self._committed))
        seen = set(first)
        return first == [c for c in self._want.get(key, []) if c in seen]
