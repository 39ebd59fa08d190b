"""The row field schemas of a Debezium record, parsed once per distinct schema.

With ``schemas.enable=true`` the JsonConverter writes every value as
``{"schema":{...},"payload":{...}}``, the schema first. Records of one table share their
schema until its columns change, so :class:`RecordSchemas` keys its cache by the raw bytes in
front of ``,"payload":`` and parses only a schema it has not seen: a record costs a search and
a dictionary look-up, and a schema change (a column dropped, a type widened) gives a new
dictionary, which the decoder notices by identity. A split is cached only once a full parse
confirmed that the schema ends exactly there, so a cached prefix always names its schema.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from cdc_support.sinks.columns import field_schemas

__all__ = ["RecordSchemas"]

_HEAD = b'{"schema":'
_PAYLOAD = b',"payload":'
_EMPTY: dict[str, Mapping[str, Any]] = {}


class RecordSchemas:
    """Row field schemas by column name of record values (``{}`` for a value without one)."""

    def __init__(self, limit: int = 64) -> None:
        self.limit = limit
        self._cache: dict[bytes, dict[str, Mapping[str, Any]]] = {}

    def __repr__(self) -> str:
        return f"RecordSchemas({len(self._cache)} schemas)"

    def of(self, value: bytes | None) -> dict[str, Mapping[str, Any]]:
        """The field schemas of one record value; the same dict for the same schema."""
        if not value or not value.startswith(_HEAD):
            return _EMPTY
        end = value.find(_PAYLOAD)
        prefix = value[:end] if end > 0 else None
        if prefix is not None and prefix in self._cache:
            return self._cache[prefix]
        try:
            doc = json.loads(value)
        except ValueError:
            return _EMPTY
        if not isinstance(doc, dict) or not isinstance(doc.get("schema"), dict):
            return _EMPTY
        fields = field_schemas(doc["schema"])
        if prefix is not None and _ends_at(value, end):
            if len(self._cache) >= self.limit:
                self._cache.pop(next(iter(self._cache)))
            self._cache[prefix] = fields
        return fields


def _ends_at(value: bytes, end: int) -> bool:
    """Whether the schema object starting after ``{"schema":`` ends exactly at ``end``."""
    text = value[: end + len(_PAYLOAD)].decode("utf-8", errors="replace")
    try:
        _, stop = json.JSONDecoder().raw_decode(text, len(_HEAD))
    except ValueError:
        return False
    return stop == len(text) - len(_PAYLOAD)
