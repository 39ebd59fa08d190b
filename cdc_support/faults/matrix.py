"""The fault matrix: what each CDC approach delivered when each fault was injected.

One :class:`FaultRow` per fault x approach run: changes committed and delivered, changes lost,
extra deliveries in the stream (at-least-once duplicates), duplicates applied to the sink
table, whether that table equals the source, the seconds to recover and the delivery guarantee.
:func:`matrix_html` renders faults as rows and approaches as columns for the report;
:func:`matrix_markdown` renders one line per run for a closing note.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["CELL_LEGEND", "WHY", "FaultRow", "matrix_html", "matrix_markdown"]

CELL_LEGEND = (
    "Each cell: changes lost · extra deliveries of a change in the stream (dup) · duplicates "
    "applied to the sink table (applied dup) · seconds from the injection until the first "
    "change committed after it was delivered (recovery)."
)
WHY = (
    "Duplicates in the stream are expected under at-least-once delivery: a producer or "
    "consumer restarted from its last committed position re-sends every change that followed "
    "that position, including the ones it had already sent but not yet confirmed. A lost "
    "change is never acceptable. The sink applies each change as an idempotent upsert or "
    "delete keyed by the primary key and records the offsets it applied in the same "
    "transaction, so a repeated change is skipped or rewrites the same row: 0 applied "
    "duplicates and a table equal to the source is what the sink guarantees."
)


@dataclass(frozen=True)
class FaultRow:
    """The outcome of one approach under one fault."""

    fault: str
    """E.g. ``kill -9 Kafka Connect``."""
    approach: str
    """E.g. ``PostgreSQL Debezium``."""
    committed: int
    delivered: int
    """Every delivery, repeats included."""
    lost: int
    duplicated_in_stream: int
    duplicates_applied: int | None
    """None when the approach has no sink table."""
    table_equal: bool | None
    """None when the approach has no sink table."""
    recovery_seconds: float | None
    """None when recovery was not measured (or not reached)."""
    guarantee: str
    """E.g. ``at-least-once``."""
    passed: bool

    @property
    def headline(self) -> str:
        """E.g. ``lost 0 · dup 261 · applied dup 0 · 4.2 s`` (plain text)."""
        return " · ".join(text for text, _bad in self._headline_parts())

    def _headline_parts(self) -> list[tuple[str, bool]]:
        """(text, is it bad) for each item of the headline."""
        applied = self.duplicates_applied
        recovery = self.recovery_seconds
        return [
            (f"lost {self.lost}", self.lost > 0),
            (f"dup {self.duplicated_in_stream}", False),
            ("no sink" if applied is None else f"applied dup {applied}", bool(applied)),
            ("recovery not measured" if recovery is None else f"{recovery:.1f} s", False),
        ]

    def as_dict(self) -> dict[str, Any]:
        """Fields as a plain dict (for JSON attachments)."""
        return asdict(self)


def _in_order(values: Sequence[str]) -> list[str]:
    """Distinct values in first-appearance order."""
    return list(dict.fromkeys(values))


_STYLE = """
body { font-family: sans-serif; font-size: 13px; margin: 1em; }
table { border-collapse: collapse; }
caption { caption-side: bottom; text-align: left; color: #444; max-width: 60em;
          padding-top: 0.6em; line-height: 1.4; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }
thead th { background: #f0f0f0; }
tbody th { background: #fafafa; font-weight: normal; }
td.pass { background: #e8f6e8; } td.fail { background: #fde4e4; }
td.none { color: #999; font-style: italic; }
.headline { font-variant-numeric: tabular-nums; white-space: nowrap; }
.bad { color: #b00; font-weight: bold; }
.detail { color: #666; font-size: 11px; }
.verdict { font-weight: bold; } td.pass .verdict { color: #070; } td.fail .verdict { color: #b00; }
"""


def _run_html(row: FaultRow) -> str:
    """The content of one run inside a matrix cell (escaped)."""
    headline = " · ".join(
        f'<span class="bad">{html.escape(text)}</span>' if bad else html.escape(text)
        for text, bad in row._headline_parts()
    )
    if row.table_equal is None:
        table = "no sink table"
    elif row.table_equal:
        table = "table equal"
    else:
        table = '<span class="bad">table differs</span>'
    detail = (
        f"delivered {row.delivered} of {row.committed} committed · {table} · "
        f"{html.escape(row.guarantee)}"
    )
    return (
        f'<div class="headline">{headline}</div><div class="detail">{detail}</div>'
        f'<div class="verdict">{"passed" if row.passed else "failed"}</div>'
    )


def _cell_html(runs: list[FaultRow]) -> str:
    if not runs:
        return '<td class="cell none">not run</td>'
    verdict = "pass" if all(r.passed for r in runs) else "fail"
    return f'<td class="cell {verdict}">' + "<hr>".join(_run_html(r) for r in runs) + "</td>"


def matrix_html(rows: Sequence[FaultRow], *, title: str = "Faults x CDC approaches") -> str:
    """A self-contained HTML page: one row per fault, one column per approach.

    A cell whose runs all passed is green, otherwise red; a loss, an applied duplicate or a
    table that differs is written in red. A fault x approach that was not run reads "not run".
    """
    faults = _in_order([r.fault for r in rows])
    approaches = _in_order([r.approach for r in rows])
    head = "".join(f"<th>{html.escape(a)}</th>" for a in approaches)
    body = []
    for fault in faults:
        cells = "".join(
            _cell_html([r for r in rows if r.fault == fault and r.approach == approach])
            for approach in approaches
        )
        body.append(f'<tr><th scope="row">{html.escape(fault)}</th>{cells}</tr>')
    passed = sum(r.passed for r in rows)
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h2>{html.escape(title)}</h2>"
        f"<p>{passed} of {len(rows)} fault x approach runs passed.</p>"
        f"<table><caption>{html.escape(f'{CELL_LEGEND} {WHY}')}</caption>"
        f"<thead><tr><th>fault</th>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></body></html>\n"
    )


def _md(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return " ".join(text.replace("\\", "\\\\").replace("|", "\\|").split())


def _bold_if(value: object, bad: bool) -> str:
    return f"**{value}**" if bad else str(value)


def matrix_markdown(rows: Sequence[FaultRow]) -> str:
    """A Markdown table, one line per fault x approach run, then a count and the caption."""
    lines = [
        "| fault | approach | delivered / committed | lost | dup in stream | applied dup "
        "| table equal | recovery | guarantee | result |",
        "|---|---|---:|---:|---:|---:|---|---:|---|---|",
    ]
    for row in rows:
        applied = row.duplicates_applied
        equal = row.table_equal
        cells = [
            _md(row.fault),
            _md(row.approach),
            f"{row.delivered} / {row.committed}",
            _bold_if(row.lost, row.lost > 0),
            str(row.duplicated_in_stream),
            "no sink" if applied is None else _bold_if(applied, applied > 0),
            "—" if equal is None else ("yes" if equal else "**no**"),
            "—" if row.recovery_seconds is None else f"{row.recovery_seconds:.1f} s",
            _md(row.guarantee),
            "pass" if row.passed else "**FAIL**",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    passed = sum(r.passed for r in rows)
    legend = (
        "Recovery: seconds from the injection until the first change committed after it was "
        "delivered."
    )
    return "\n".join([*lines, "", f"{passed} of {len(rows)} passed. {legend} {WHY}", ""])
