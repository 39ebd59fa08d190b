"""Steps for features/postgres/toast.feature: unchanged TOASTed values through Debezium."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pytest_bdd import given, parsers, then, when

from cdc_support.checks.integrity import compare_tables
from cdc_support.checks.replay import rebuild_from_events
from cdc_support.events import ChangeEvent, jsonable
from cdc_support.kafka.connector import DebeziumConnector
from cdc_support.kafka.envelope import UNAVAILABLE_VALUE_PLACEHOLDER
from cdc_support.kafka.topics import TopicReader
from cdc_support.postgres.loader import fetch_table
from cdc_support.postgres.tables import (
    base64_bytes,
    create_documents_table,
    insert_rows,
    random_bytes,
    random_text,
    toast_bytes,
    update_one,
)
from pytest_cdc.report import evidence

EVENT_TIMEOUT = 60.0
SIZE = 10_000
NORMALIZERS = {"attachment": base64_bytes}
"""Debezium sends bytea base64-encoded (binary.handling.mode=bytes + JSON converter)."""


@dataclass
class Documents:
    """The documents table and the large values written to it."""

    conn: Any
    name: str
    identity: str
    body: str
    attachment: bytes

    def rows(self) -> dict[tuple[Any, ...], dict[str, Any]]:
        """The table by id."""
        return fetch_table(self.conn, self.name, ("id",))

    def __repr__(self) -> str:
        return f"{self.name} (REPLICA IDENTITY {self.identity}, {SIZE}-byte values)"


@dataclass
class DocumentCapture:
    """The connector on the documents table, its placeholder and a reader on its topic."""

    connector: DebeziumConnector
    reader: TopicReader
    placeholder: str

    def update_event(self) -> ChangeEvent:
        """The first update event (after the snapshot of the one row)."""
        seen = self.reader.read_until(
            lambda s: any(e.op == "u" for e in s.events),
            timeout=EVENT_TIMEOUT,
            expected="the update event",
        )
        return next(e for e in seen.events if e.op == "u")

    def __repr__(self) -> str:
        return f"DocumentCapture({self.connector.name}, placeholder {self.placeholder!r})"


def _shortened(value: Any) -> Any:
    """Long strings cut for the report, with their length."""
    if isinstance(value, dict):
        return {k: _shortened(v) for k, v in value.items()}
    if isinstance(value, str) and len(value) > 80:
        return f"{value[:40]}... ({len(value)} characters)"
    return value


@given(
    parsers.parse(
        "a documents table with REPLICA IDENTITY {identity} holding one document with a "
        "10 kB random body and attachment"
    ),
    target_fixture="documents",
)
def documents_table(pg_conn: Any, identity: str) -> Documents:
    """Random letters and bytes do not compress, so both are stored out of line (TOAST)."""
    assert identity in ("FULL", "DEFAULT"), identity
    create_documents_table(pg_conn, "documents", identity)
    body, attachment = random_text(SIZE, seed=5), random_bytes(SIZE, seed=6)
    row = {"id": 1, "title": "draft", "body": body, "attachment": attachment}
    insert_rows(pg_conn, "documents", [row])
    stored = toast_bytes(pg_conn, "documents")
    evidence.attach_json("TOAST relation of documents", {"bytes stored out of line": stored})
    assert stored >= SIZE, f"the large values were not stored out of line ({stored} bytes)"
    return Documents(pg_conn, "documents", identity, body, attachment)


def _capture(
    factory: Callable[..., DebeziumConnector],
    reader_factory: Callable[..., TopicReader],
    documents: Documents,
    placeholder: str | None,
) -> DocumentCapture:
    extra = {"unavailable.value.placeholder": placeholder} if placeholder else None
    connector = factory([documents.name], extra=extra)
    evidence.attach_json(
        "connector config", {k: v for k, v in connector.config.items() if "password" not in k}
    )
    reader = reader_factory([connector.topic(documents.name)])
    return DocumentCapture(connector, reader, placeholder or UNAVAILABLE_VALUE_PLACEHOLDER)


@given(
    "Debezium captures the documents table with its default placeholder",
    target_fixture="documents_capture",
)
def capture_default(
    pg_connector_factory, kafka_reader_factory, documents: Documents
) -> DocumentCapture:
    """unavailable.value.placeholder left at Debezium's default."""
    return _capture(pg_connector_factory, kafka_reader_factory, documents, None)


@given(
    parsers.parse(
        "Debezium captures the documents table with unavailable.value.placeholder={value}"
    ),
    target_fixture="documents_capture",
)
def capture_with_placeholder(
    pg_connector_factory, kafka_reader_factory, documents: Documents, value: str
) -> DocumentCapture:
    """The placeholder is a connector setting."""
    return _capture(pg_connector_factory, kafka_reader_factory, documents, value)


@when("I update only the document's title")
def update_title(documents: Documents) -> None:
    """The large columns are not touched: PostgreSQL keeps pointing at the same TOAST data."""
    update_one(documents.conn, documents.name, {"id": 1}, {"title": "final"})


def _expected(text: str, documents: Documents, column: str) -> Any:
    real = {"body": documents.body, "attachment": base64.b64encode(documents.attachment).decode()}
    if text.startswith('"') and text.endswith('"'):
        return text[1:-1]
    if text in ("the real 10 kB text", "the real 10 kB bytes"):
        return real[column]
    raise AssertionError(f"unknown expectation {text!r} in the feature")


def _check_column(capture: DocumentCapture, documents: Documents, column: str, text: str) -> None:
    event = capture.update_event()
    evidence.attach_json(
        f"the update event as Debezium wrote it ({column}; long values shortened)",
        _shortened(jsonable(event.to_json_dict())),
    )
    assert event.after is not None and event.after["title"] == "final"
    expected = _expected(text, documents, column)
    actual = event.after[column]
    assert actual == expected, (
        f"{column}: expected {_shortened(expected)}, got {_shortened(actual)}"
    )


@then(parsers.parse("the update event's body is {text}"))
def update_body(documents_capture: DocumentCapture, documents: Documents, text: str) -> None:
    """What the update carries for the untouched text column."""
    _check_column(documents_capture, documents, "body", text)


@then(parsers.parse("the update event's attachment is {text}"))
def update_attachment(documents_capture: DocumentCapture, documents: Documents, text: str) -> None:
    """What the update carries for the untouched bytea column (base64 in JSON)."""
    _check_column(documents_capture, documents, "attachment", text)


def _rebuilt_equals(
    capture: DocumentCapture, documents: Documents, placeholder: str, repaired: int
) -> None:
    capture.update_event()
    events = capture.reader.seen.events
    rebuilt = rebuild_from_events(events, unavailable_placeholder=placeholder)
    report = compare_tables(documents.rows(), rebuilt, normalizers=NORMALIZERS)
    counts = {"repaired": rebuilt.unavailable_events, "unresolved": rebuilt.unavailable_unresolved}
    evidence.attach_json("integrity: documents rebuilt", {**report.as_dict(), **counts})
    naive = compare_tables(
        documents.rows(),
        rebuild_from_events(events, unavailable_placeholder=None),
        normalizers=NORMALIZERS,
    )
    evidence.attach_json("integrity without the repair (placeholder stored)", naive.as_dict())
    assert report.ok, f"integrity failure (documents): {report.summary()}"
    assert counts == {"repaired": repaired, "unresolved": 0}, counts
    assert naive.ok == (repaired == 0), "a replay storing the placeholder should differ"


@then(
    parsers.parse(
        "the documents rebuilt from the topic equal the source table, "
        "with {repaired:d} event repaired"
    )
)
def rebuilt_default(
    documents_capture: DocumentCapture, documents: Documents, repaired: int
) -> None:
    """The replay keeps the previous value where the placeholder stands."""
    _rebuilt_equals(documents_capture, documents, UNAVAILABLE_VALUE_PLACEHOLDER, repaired)


@then(
    parsers.parse(
        'the documents rebuilt from the topic with the placeholder "{value}" equal the source '
        "table, with {repaired:d} event repaired"
    )
)
def rebuilt_custom(
    documents_capture: DocumentCapture, documents: Documents, value: str, repaired: int
) -> None:
    """A replay must use the connector's placeholder, not Debezium's default."""
    _rebuilt_equals(documents_capture, documents, value, repaired)
