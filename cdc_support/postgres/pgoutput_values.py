"""pgoutput column values: a column's text output form -> the Python value psycopg gives.

pgoutput sends each column in its type's text output form; :func:`convert_text` turns the
common built-in types (by type OID) into Python values so events compare with rows read
through psycopg. Other types stay text.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import uuid
from collections.abc import Callable
from typing import Any

__all__ = ["convert_text"]


def _timestamptz(text: str) -> Any:
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        return text  # infinity, BC dates: keep the text


def _timestamp(text: str) -> Any:
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        return text


def _date(text: str) -> Any:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return text


_CONVERTERS: dict[int, Callable[[str], Any]] = {
    16: lambda t: t == "t",  # bool
    20: int,  # int8
    21: int,  # int2
    23: int,  # int4
    26: int,  # oid
    700: float,  # float4
    701: float,  # float8
    1700: decimal.Decimal,  # numeric
    1184: _timestamptz,  # timestamptz (needs DateStyle ISO on the replication connection)
    1114: _timestamp,  # timestamp
    1082: _date,  # date
    114: json.loads,  # json
    3802: json.loads,  # jsonb
    2950: uuid.UUID,  # uuid
}


def convert_text(type_oid: int, text: str) -> Any:
    """A column's text form -> the Python value psycopg would give for common types.

    Integers, bool, floats, numeric (Decimal), timestamps, dates, json/jsonb and uuid are
    converted; other types stay text. Assumes ``DateStyle=ISO`` (the consumer sets it).
    """
    converter = _CONVERTERS.get(type_oid)
    return text if converter is None else converter(text)
