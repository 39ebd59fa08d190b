"""One change-event model shared by every CDC approach.

Each approach (Debezium envelope, logical decoding, trigger audit rows, polling, Delta CDF,
Iceberg snapshot diffs, ...) normalises what it reads into :class:`ChangeEvent`; log-compaction
markers become :class:`Tombstone`. Validation, lag measurement, sinks and the report only speak
this model.

Keyless tables. A table without a primary key has no key to carry: Debezium writes its change
records, and the tombstone after a delete, with a null record key. Such an event keeps
``key=None`` (never an invented key) and the row itself is its identity: replaying a keyless
table (``validation.rebuild_from_events``) treats it as a multiset of rows, where a delete
removes one row equal to ``before`` and an update replaces one row equal to ``before`` by
``after``. That needs the whole old row in ``before``, i.e. ``REPLICA IDENTITY FULL`` on
PostgreSQL (with the default identity PostgreSQL refuses UPDATE and DELETE on a published
keyless table). A keyless tombstone is ``Tombstone(key=None, ...)``: it names nothing to forget.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import uuid
from dataclasses import dataclass
from typing import Any, Literal

Op = Literal["c", "u", "d", "r"]
"""c = create (insert), u = update, d = delete, r = read (snapshot)."""

OPS: frozenset[str] = frozenset({"c", "u", "d", "r"})


class MalformedEvent(ValueError):
    """A record could not be turned into a change event; the message says what and where."""


def _iso(ts: float | None) -> str | None:
    """Epoch seconds -> ISO 8601 UTC string with microseconds (None stays None)."""
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).isoformat(timespec="microseconds")


def jsonable(value: Any) -> Any:
    """Convert a value to something ``json.dumps`` accepts, keeping it readable."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, uuid.UUID):
        return str(value)
    return repr(value)


@dataclass(frozen=True, slots=True)
class ChangeEvent:
    """One row change as seen by a CDC approach.

    ``source`` holds the approach-specific position (lsn, txId, snapshot flag,
    topic/partition/offset, ...). ``commit_ts`` is the source commit time and ``observed_ts``
    the time the consumer saw the change, both in epoch seconds (UTC).
    """

    op: Op
    key: tuple[Any, ...] | None
    """The row's key values in key order; None for a keyless table (see the module docstring)."""
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    source: dict[str, Any]
    commit_ts: float | None
    observed_ts: float | None

    @property
    def row(self) -> dict[str, Any] | None:
        """The row the event is about: ``after`` for c/r/u, ``before`` for d."""
        return self.before if self.op == "d" else self.after

    @property
    def keyless(self) -> bool:
        """True when the event has no key (a table without a primary key)."""
        return self.key is None

    @property
    def lag_seconds(self) -> float | None:
        """``observed_ts - commit_ts`` when both are known, else None (may be < 0 on skew)."""
        if self.observed_ts is None or self.commit_ts is None:
            return None
        return self.observed_ts - self.commit_ts

    def to_json_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (timestamps as numbers and as ISO strings)."""
        return {
            "op": self.op,
            "key": jsonable(self.key),
            "before": jsonable(self.before),
            "after": jsonable(self.after),
            "source": jsonable(self.source),
            "commit_ts": self.commit_ts,
            "commit_time": _iso(self.commit_ts),
            "observed_ts": self.observed_ts,
            "observed_time": _iso(self.observed_ts),
            "lag_seconds": self.lag_seconds,
        }

    @classmethod
    def from_json_dict(cls, data: dict[str, Any]) -> ChangeEvent:
        """The event :meth:`to_json_dict` wrote (the ISO times and ``lag_seconds`` are derived
        and ignored). Exact for JSON-native values (None, bool, int, float, str, dicts; the key
        comes back a tuple); any other value comes back in its JSON form (a Decimal or a
        datetime as its string), so ``from_json_dict(d).to_json_dict() == d`` always."""
        if not isinstance(data, dict):
            raise MalformedEvent(f"a change event is a JSON object, got {type(data).__name__}")
        op, key = data.get("op"), data.get("key")
        if op not in OPS:
            raise MalformedEvent(f"change event op {op!r} is not one of {sorted(OPS)}")
        if key is not None and not isinstance(key, list):
            raise MalformedEvent(f"change event key {key!r} is not a list (or null)")
        for name in ("before", "after", "source"):
            value = data.get(name)
            if value is not None and not isinstance(value, dict):
                raise MalformedEvent(f"change event {name} {value!r} is not an object (or null)")
        return cls(
            op=op,
            key=tuple(key) if key is not None else None,
            before=data.get("before"),
            after=data.get("after"),
            source=data.get("source") or {},
            commit_ts=data.get("commit_ts"),
            observed_ts=data.get("observed_ts"),
        )


@dataclass(frozen=True, slots=True)
class Tombstone:
    """A log-compaction marker (Kafka record with no value) for ``key``; not a change.

    ``key`` is None for a keyless table's tombstone (a record with neither key nor value).
    """

    key: tuple[Any, ...] | None
    source: dict[str, Any]
    observed_ts: float | None

    def to_json_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return {
            "tombstone": True,
            "key": jsonable(self.key),
            "source": jsonable(self.source),
            "observed_ts": self.observed_ts,
            "observed_time": _iso(self.observed_ts),
        }
