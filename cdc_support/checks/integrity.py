"""Integrity checks: canonical rows, order-independent checksums, per-key diffs.

Canonical form (``canonical_row``) is compact JSON with sorted keys, after two steps per column:

1. a caller-supplied normalizer for that column, if any (see ``normalizers``);
2. the default normalisation of the resulting value:

   * ``None``, ``bool``, ``int`` and ``str`` are kept as they are (strings are never parsed,
     so the text ``"007"`` stays ``"007"`` and the text ``"12.50"`` stays ``"12.50"``);
   * ``Decimal`` -> plain string of the normalised number, no exponent: ``Decimal("12.50")``
     -> ``"12.5"``, ``Decimal("1E+2")`` -> ``"100"``, ``Decimal("-0.00")`` -> ``"0"``;
   * ``float`` -> ``repr`` string (``12.0`` -> ``"12.0"``);
   * aware ``datetime`` -> UTC ISO 8601 with microseconds and ``Z``
     (``"2024-01-01T10:00:00.000000Z"``); naive ``datetime`` -> ISO with microseconds, no zone;
   * ``date`` -> ``"2024-01-01"``; ``time`` -> ISO with microseconds;
   * ``bytes``/``memoryview`` -> lower-case hex; ``UUID`` -> str; ``timedelta`` -> seconds repr;
   * ``dict``/``list`` (json/jsonb, arrays) -> normalised recursively; anything else -> ``str``.

Values that arrive as strings on one side (Debezium ``decimal.handling.mode=string`` sends
``"12.50"``, TIMESTAMPTZ arrives as an ISO string) therefore need a column normalizer such as
:func:`decimal_string` or :func:`utc_timestamp` to compare equal to the source's ``Decimal`` /
``datetime``; ``cdc_support.workload.NORMALIZERS`` bundles them for the generated tables.
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import html
import json
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Key = tuple[Any, ...]
Row = Mapping[str, Any]
Normalizers = Mapping[str, Callable[[Any], Any]]

__all__ = [
    "IntegrityReport",
    "KeyDiff",
    "canonical_row",
    "canonical_value",
    "compare_multisets",
    "compare_tables",
    "decimal_string",
    "diff_by_key",
    "rows_by_identity",
    "table_checksum",
    "utc_timestamp",
]

_MOD = 2**128
_TIMESTAMP_RE = re.compile(
    r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|z|[+-]\d{2}(:?\d{2}(:?\d{2})?)?)?$"
)


# --------------------------------------------------------------------------- normalisation


def _decimal_text(d: decimal.Decimal) -> str:
    if not d.is_finite():
        return str(d)
    if d.is_zero():
        return "0"
    return format(d.normalize(), "f")


def _iso_utc(value: dt.datetime) -> str:
    if value.tzinfo is None or value.utcoffset() is None:
        return value.isoformat(timespec="microseconds")
    utc = value.astimezone(dt.UTC).replace(tzinfo=None)
    return utc.isoformat(timespec="microseconds") + "Z"


def canonical_value(value: Any) -> Any:
    """Default normalisation of one value into a JSON-friendly scalar (see module docstring)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, decimal.Decimal):
        return _decimal_text(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dt.datetime):
        return _iso_utc(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return value.isoformat(timespec="microseconds")
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dt.timedelta):
        return repr(value.total_seconds())
    if isinstance(value, Mapping):
        return {str(k): canonical_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [canonical_value(v) for v in value]
    return str(value)


def decimal_string(value: Any) -> Any:
    """Normalizer: Decimal, int, float or numeric string -> canonical decimal string.

    ``Decimal("12.50")``, ``"12.50"`` and ``"12.5"`` all become ``"12.5"``. None stays None;
    strings that are not numbers are returned unchanged.
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, decimal.Decimal):
        return _decimal_text(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _decimal_text(decimal.Decimal(repr(value)))
    if isinstance(value, str):
        try:
            return _decimal_text(decimal.Decimal(value.strip()))
        except decimal.InvalidOperation:
            return value
    return value


def utc_timestamp(value: Any) -> Any:
    """Normalizer: aware datetime or ISO 8601 string with Z/offset -> UTC ISO with micros + Z.

    ``"2024-01-01T12:00:00.5+02:00"`` -> ``"2024-01-01T10:00:00.500000Z"``. Naive values (no
    zone) are rendered with microseconds and no zone; strings that are not date-times (also
    date-only strings) and other types are returned unchanged.
    """
    if isinstance(value, str):
        text = value.strip()
        if not _TIMESTAMP_RE.match(text):
            return value
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = dt.datetime.fromisoformat(text)
        except ValueError:
            return value
        return _iso_utc(parsed)
    if isinstance(value, dt.datetime):
        return _iso_utc(value)
    return value


def canonical_row(row: Row, *, normalizers: Normalizers | None = None) -> str:
    """Deterministic JSON (sorted keys, compact) of ``row`` after normalisation."""
    data = {}
    for column, value in row.items():
        fn = normalizers.get(column) if normalizers else None
        data[str(column)] = canonical_value(fn(value) if fn else value)
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _canonical_key(key: Key) -> str:
    return json.dumps(canonical_value(list(key)), separators=(",", ":"), ensure_ascii=False)


def _row_hash(canonical: str) -> int:
    return int.from_bytes(hashlib.sha256(canonical.encode("utf-8")).digest()[:16], "big")


def table_checksum(rows: Iterable[Row], *, normalizers: Normalizers | None = None) -> str:
    """Order-independent checksum of a multiset of rows (32 hex digits).

    Each canonical row is hashed with SHA-256 and the first 128 bits are summed mod 2**128,
    so row order does not matter but duplicated rows do (unlike XOR).
    """
    total = 0
    for row in rows:
        total = (total + _row_hash(canonical_row(row, normalizers=normalizers))) % _MOD
    return f"{total:032x}"


# --------------------------------------------------------------------------- diffs


def _differing_columns(
    expected: Row, actual: Row, normalizers: Normalizers | None
) -> tuple[str, ...]:
    exp = json.loads(canonical_row(expected, normalizers=normalizers))
    act = json.loads(canonical_row(actual, normalizers=normalizers))
    columns = list(expected) + [c for c in actual if c not in expected]
    missing = object()
    return tuple(c for c in columns if exp.get(c, missing) != act.get(c, missing))


_ABSENT = object()


def _cell(value: Any) -> str:
    if value is _ABSENT:
        return '<span class="absent">(absent)</span>'
    return html.escape(repr(value))


_HTML_STYLE = """
body { font-family: sans-serif; font-size: 13px; margin: 1em; }
table { border-collapse: collapse; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
td.kind-missing { color: #b00; font-weight: bold; }
td.kind-extra { color: #a60; font-weight: bold; }
td.kind-changed { color: #06c; font-weight: bold; }
tr.diff td { background: #fdd; }
.absent { color: #999; font-style: italic; }
code { font-family: monospace; }
"""


@dataclass
class KeyDiff:
    """Per-key difference between an expected and an actual table (key -> row mappings)."""

    missing: dict[Key, Row] = field(default_factory=dict)
    extra: dict[Key, Row] = field(default_factory=dict)
    changed: dict[Key, tuple[Row, Row]] = field(default_factory=dict)
    changed_columns: dict[Key, tuple[str, ...]] = field(default_factory=dict)

    @property
    def is_empty(self) -> bool:
        """True when nothing is missing, extra or changed."""
        return not (self.missing or self.extra or self.changed)

    def _columns_of(self, key: Key) -> tuple[str, ...]:
        if key in self.changed_columns:
            return self.changed_columns[key]
        expected, actual = self.changed[key]
        return _differing_columns(expected, actual, None)

    def summary(self, examples: int = 5) -> str:
        """One line per kind of difference, with a few example keys."""
        if self.is_empty:
            return "no differences"
        lines = [
            f"{len(self.missing)} missing, {len(self.extra)} extra, {len(self.changed)} changed"
        ]
        for name, keys in (
            ("missing", list(self.missing)),
            ("extra", list(self.extra)),
            ("changed", list(self.changed)),
        ):
            if not keys:
                continue
            shown = keys[:examples]
            if name == "changed":
                items = [f"{k!r} ({', '.join(self._columns_of(k))})" for k in shown]
            else:
                items = [repr(k) for k in shown]
            more = f" ... and {len(keys) - len(shown)} more" if len(keys) > len(shown) else ""
            lines.append(f"  {name}: {', '.join(items)}{more}")
        return "\n".join(lines)

    def to_html(self, limit: int = 200, title: str = "Per-key diff") -> str:
        """A self-contained HTML page: one table row per (key, column), differences in red."""
        body: list[str] = []
        shown = 0
        total = len(self.missing) + len(self.extra) + len(self.changed)

        def add(kind: str, key: Key, expected: Row | None, actual: Row | None) -> None:
            diff_cols = set(self._columns_of(key)) if kind == "changed" else None
            exp_cols = list(expected or {})
            columns = exp_cols + [c for c in (actual or {}) if c not in exp_cols] or ["(none)"]
            for i, column in enumerate(columns):
                exp = _ABSENT if expected is None else expected.get(column, _ABSENT)
                act = _ABSENT if actual is None else actual.get(column, _ABSENT)
                differs = diff_cols is None or column in diff_cols
                cls = ' class="diff"' if differs else ""
                head = ""
                if i == 0:
                    span = f' rowspan="{len(columns)}"'
                    head = (
                        f'<td{span} class="kind-{kind}">{kind}</td>'
                        f"<td{span}><code>{html.escape(repr(key))}</code></td>"
                    )
                body.append(
                    f"<tr{cls}>{head}<td>{html.escape(column)}</td>"
                    f"<td>{_cell(exp)}</td><td>{_cell(act)}</td></tr>"
                )

        for kind, items in (
            ("missing", ((k, r, None) for k, r in self.missing.items())),
            ("extra", ((k, None, r) for k, r in self.extra.items())),
            ("changed", ((k, e, a) for k, (e, a) in self.changed.items())),
        ):
            for key, expected, actual in items:
                if shown >= limit:
                    break
                add(kind, key, expected, actual)
                shown += 1

        note = (
            f"<p>Showing {shown} of {total} differing keys.</p>"
            if shown < total
            else f"<p>{total} differing keys.</p>"
        )
        if self.is_empty:
            note = "<p>No differences.</p>"
        return (
            '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title><style>{_HTML_STYLE}</style></head><body>"
            f"<h2>{html.escape(title)}</h2>"
            f"<p>{html.escape(self.summary().splitlines()[0])}</p>{note}"
            "<table><thead><tr><th>kind</th><th>key</th><th>column</th>"
            "<th>expected</th><th>actual</th></tr></thead><tbody>"
            + "".join(body)
            + "</tbody></table></body></html>\n"
        )


def diff_by_key(
    expected: Mapping[Key, Row],
    actual: Mapping[Key, Row],
    *,
    normalizers: Normalizers | None = None,
) -> KeyDiff:
    """Compare two key -> row mappings by canonical form.

    Keys are matched by their default canonical form (see ``canonical_value``): the key
    ``(Decimal("1.0"),)`` matches ``(Decimal("1"),)`` and ``("1",)``, but ``(1,)`` does not
    match ``("1",)``. Reported keys are the expected side's (or the actual side's for extras).
    """
    actual_by_ckey = {_canonical_key(k): k for k in actual}
    diff = KeyDiff()
    seen: set[str] = set()
    for key, exp_row in expected.items():
        ckey = _canonical_key(key)
        seen.add(ckey)
        if ckey not in actual_by_ckey:
            diff.missing[key] = exp_row
            continue
        act_row = actual[actual_by_ckey[ckey]]
        if canonical_row(exp_row, normalizers=normalizers) != canonical_row(
            act_row, normalizers=normalizers
        ):
            diff.changed[key] = (exp_row, act_row)
            diff.changed_columns[key] = _differing_columns(exp_row, act_row, normalizers)
    for ckey, key in actual_by_ckey.items():
        if ckey not in seen:
            diff.extra[key] = actual[key]
    return diff


@dataclass
class IntegrityReport:
    """Counts, checksums and per-key diff of an expected vs an actual table."""

    expected_count: int
    actual_count: int
    expected_checksum: str
    actual_checksum: str
    diff: KeyDiff

    @property
    def ok(self) -> bool:
        """True when counts, checksums and the per-key diff all agree."""
        return (
            self.expected_count == self.actual_count
            and self.expected_checksum == self.actual_checksum
            and self.diff.is_empty
        )

    def summary(self) -> str:
        """Human-readable verdict with counts, checksums and the diff summary."""
        verdict = "OK" if self.ok else "MISMATCH"
        lines = [
            f"integrity {verdict}: expected {self.expected_count} rows "
            f"(checksum {self.expected_checksum}), actual {self.actual_count} rows "
            f"(checksum {self.actual_checksum})"
        ]
        if not self.diff.is_empty:
            lines.append(self.diff.summary())
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        """Counts, checksums and diff sizes as a JSON-friendly dict."""
        return {
            "ok": self.ok,
            "expected_count": self.expected_count,
            "actual_count": self.actual_count,
            "expected_checksum": self.expected_checksum,
            "actual_checksum": self.actual_checksum,
            "missing": len(self.diff.missing),
            "extra": len(self.diff.extra),
            "changed": len(self.diff.changed),
        }


def compare_tables(
    expected: Mapping[Key, Row],
    actual: Mapping[Key, Row],
    *,
    normalizers: Normalizers | None = None,
) -> IntegrityReport:
    """Row counts, order-independent checksums and a per-key diff of two tables."""
    return IntegrityReport(
        expected_count=len(expected),
        actual_count=len(actual),
        expected_checksum=table_checksum(expected.values(), normalizers=normalizers),
        actual_checksum=table_checksum(actual.values(), normalizers=normalizers),
        diff=diff_by_key(expected, actual, normalizers=normalizers),
    )


def rows_by_identity(
    rows: Iterable[Row], *, normalizers: Normalizers | None = None
) -> dict[Key, Row]:
    """Key a keyless table (a multiset of rows) by identity: ``(canonical row, occurrence)``.

    Two equal rows get occurrences 0 and 1, so duplicates count; the canonical form uses
    ``normalizers``, so both sides of a comparison must be keyed with the same ones.
    """
    seen: dict[str, int] = {}
    keyed: dict[Key, Row] = {}
    for row in rows:
        canonical = canonical_row(row, normalizers=normalizers)
        n = seen.get(canonical, 0)
        seen[canonical] = n + 1
        keyed[(canonical, n)] = row
    return keyed


def compare_multisets(
    expected: Iterable[Row],
    actual: Iterable[Row],
    *,
    normalizers: Normalizers | None = None,
) -> IntegrityReport:
    """:func:`compare_tables` for keyless tables: rows are compared as multisets.

    Counts and checksums already treat rows as a multiset; the diff lists the rows (with
    their multiplicity) found on one side only — there is no "changed" without a key.
    """
    exp = rows_by_identity(expected, normalizers=normalizers)
    act = rows_by_identity(actual, normalizers=normalizers)
    return compare_tables(exp, act, normalizers=normalizers)


# --------------------------------------------------------------------------- event streams
