"""Values Debezium could not read: unchanged TOAST columns, and how a sink keeps the old value.

With ``REPLICA IDENTITY DEFAULT`` PostgreSQL's WAL record of an UPDATE leaves out a large
(TOASTed) value the statement did not change, so Debezium writes a placeholder instead
(``unavailable.value.placeholder``, default ``__debezium_unavailable_value``) in a form that
fits the column's Kafka Connect type:

====================================  ==================================================
column                                the value Debezium writes (JSON converter)
====================================  ==================================================
text, varchar, json(b), numeric ...   the placeholder string
bytea                                 base64 of the placeholder's bytes
text[], varchar[], json[]             ``[placeholder]``
bytea[]                               ``[base64 of the placeholder's bytes]``
int[], date[], bigint[]               the placeholder's bytes as a list of numbers
uuid[]                                ``[the name-based (v3) UUID of the placeholder's bytes]``
hstore (map mode)                     ``{placeholder: placeholder}``
====================================  ==================================================

A column's converter turns such a value into :data:`UNAVAILABLE`; the sink then keeps the
column's previous value: from an earlier event of the same key in the batch
(:func:`fill_unavailable`), else from the table's current row. A value equal to the
placeholder cannot be told from it: pick a placeholder no real value holds.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from cdc_support.kafka.envelope import UNAVAILABLE_VALUE_PLACEHOLDER, unavailable_value_forms

__all__ = [
    "UNAVAILABLE",
    "UNAVAILABLE_PLACEHOLDER",
    "fill_unavailable",
    "has_unavailable",
    "keeping_unavailable",
    "placeholder_forms",
    "unavailable_columns",
]

UNAVAILABLE_PLACEHOLDER = UNAVAILABLE_VALUE_PLACEHOLDER
"""Debezium's default ``unavailable.value.placeholder``."""


class _Unavailable:
    """The one marker of a value the source did not send (see the module doc)."""

    _instance: _Unavailable | None = None

    def __new__(cls) -> _Unavailable:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNAVAILABLE"

    def __reduce__(self) -> str:
        return "UNAVAILABLE"


UNAVAILABLE = _Unavailable()

_UUID = "io.debezium.data.Uuid"
_JSON_SHAPES = {"string": str, "bytes": str, "array": list, "map": dict}
"""Kafka Connect type -> the JSON type of its values (struct and numbers hold no placeholder)."""


def _name_uuid(raw: bytes) -> str:
    """Java's ``UUID.nameUUIDFromBytes``: MD5 of the bytes as a version 3 UUID."""
    return str(uuid.UUID(bytes=hashlib.md5(raw).digest(), version=3))


def placeholder_forms(schema: Mapping[str, Any] | None, placeholder: str) -> tuple[Any, ...]:
    """The JSON values that mean "unavailable" in a column of this Kafka Connect schema:
    Debezium's forms (:func:`~cdc_support.kafka.envelope.unavailable_value_forms`) of the column's
    JSON type, plus ``[name-based UUID]`` for uuid[]; every form when there is no schema."""
    forms = [*unavailable_value_forms(placeholder), [_name_uuid(placeholder.encode())]]
    if schema is None:
        return tuple(forms)
    shape = _JSON_SHAPES.get(str(schema.get("type")))
    return tuple(f for f in forms if shape is not None and isinstance(f, shape))


def keeping_unavailable(convert: Callable[[Any], Any], forms: tuple[Any, ...]) -> Callable:
    """``convert`` that returns :data:`UNAVAILABLE` for a placeholder value."""
    if not forms:
        return convert

    def convert_or_mark(value: Any) -> Any:
        if value is not None and any(value == form for form in forms):
            return UNAVAILABLE
        return convert(value)

    return convert_or_mark


def has_unavailable(row: Mapping[str, Any] | None) -> bool:
    """True when a column of ``row`` is :data:`UNAVAILABLE`."""
    return row is not None and any(v is UNAVAILABLE for v in row.values())


def unavailable_columns(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """Columns :data:`UNAVAILABLE` in at least one row, in first-seen order."""
    seen: dict[str, None] = {}
    for row in rows:
        for name, value in row.items():
            if value is UNAVAILABLE:
                seen.setdefault(name)
    return list(seen)


def fill_unavailable(row: Mapping[str, Any], previous: Mapping[str, Any]) -> dict[str, Any]:
    """``row`` with each unavailable value taken from ``previous`` (an earlier row image of
    the same key) where it has one."""
    return {
        name: previous.get(name, value) if value is UNAVAILABLE else value
        for name, value in row.items()
    }
