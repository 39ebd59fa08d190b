"""Attach evidence to the Allure report: JSON samples, HTML tables, PNG plots, text."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import allure

from cdc_support.events import ChangeEvent, Tombstone


def attach_json(name: str, data: Any) -> None:
    """Attach any JSON-serialisable value, pretty-printed."""
    allure.attach(
        json.dumps(data, indent=2, default=str, ensure_ascii=False),
        name=name,
        attachment_type=allure.attachment_type.JSON,
    )


def attach_events(name: str, records: Iterable[ChangeEvent | Tombstone], limit: int = 20) -> None:
    """Attach the first `limit` events/tombstones in the normalised ChangeEvent form."""
    sample = [r.to_json_dict() for _, r in zip(range(limit), records, strict=False)]
    attach_json(name, sample)


def attach_html(name: str, html: str) -> None:
    """Attach an HTML page (tables, diffs)."""
    allure.attach(html, name=name, attachment_type=allure.attachment_type.HTML)


def attach_png(name: str, png: bytes) -> None:
    """Attach a PNG image (plots)."""
    allure.attach(png, name=name, attachment_type=allure.attachment_type.PNG)


def attach_text(name: str, text: str) -> None:
    """Attach plain text (summaries, logs)."""
    allure.attach(text, name=name, attachment_type=allure.attachment_type.TEXT)


def table_html(title: str, rows: Iterable[Mapping[str, Any]]) -> str:
    """A small self-contained HTML table of dict rows."""
    from html import escape

    rows = list(rows)
    columns = list(rows[0]) if rows else []
    head = "".join(f"<th>{escape(str(c))}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(str(r.get(c, '')))}</td>" for c in columns) + "</tr>"
        for r in rows
    )
    style = (
        "body{font-family:sans-serif}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}th{background:#eee}"
    )
    return (
        f"<html><head><meta charset='utf-8'><style>{style}</style></head><body>"
        f"<h3>{escape(title)}</h3><table><tr>{head}</tr>{body}</table></body></html>"
    )
