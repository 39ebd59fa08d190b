"""Telling records the table cannot take from the ones it can, before and after a commit.

Two checks keep one bad record from stopping a worker:

* before a batch is written, :func:`unfit_rows` converts all its rows to the table's Arrow
  types at once (about a millisecond per 2,000 rows); only when that fails is each row
  converted on its own, to name the rows and columns that do not fit (an integer beyond 64
  bits, a string with a lone surrogate, a decimal beyond its precision, ...);
* when a commit fails anyway, :func:`is_data_error` says whether the table refused the data
  (a CHECK constraint, a required column, a schema mismatch): then the worker isolates the
  records it refused; any other failure (I/O, another writer) is retried or stops the worker.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa

from cdc_support.sinks.errors import SinkError

__all__ = ["DATA_ERROR_MARKERS", "is_data_error", "one_line", "unfit_rows"]

DATA_ERROR_TYPES: tuple[type[BaseException], ...] = (
    pa.ArrowInvalid,
    pa.ArrowTypeError,
    pa.ArrowNotImplementedError,
    ValueError,
    TypeError,
    KeyError,
    OverflowError,
)
"""Failures of converting or checking values: the data, not the store, is the cause."""

DATA_ERROR_MARKERS = ("Invalid data found", "failed validation check", "Schema error")
"""delta-rs raises a plain ``DeltaError`` for rows that break the table's rules; its message
says so with one of these."""

REASON_LIMIT = 500


def one_line(exc: BaseException | str, limit: int = REASON_LIMIT) -> str:
    """An error message on one line (delta-rs prints tables of the refused rows), shortened."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def is_data_error(exc: BaseException) -> bool:
    """True when ``exc`` says the table refused the data (so retrying cannot help)."""
    from deltalake.exceptions import DeltaError, SchemaMismatchError

    if isinstance(exc, SinkError | OSError):  # another writer, or the store: not the data
        return False
    if isinstance(exc, (SchemaMismatchError, *DATA_ERROR_TYPES)):
        return True
    return isinstance(exc, DeltaError) and any(m in str(exc) for m in DATA_ERROR_MARKERS)


def unfit_rows(
    rows: Sequence[Mapping[str, Any]], types: Mapping[str, pa.DataType]
) -> dict[int, str]:
    """Index -> reason for each row with a value that cannot become its column's Arrow type
    (columns not in ``types`` are not checked); {} when every row fits."""
    schema = pa.schema([pa.field(name, kind) for name, kind in types.items()])
    try:
        pa.Table.from_pylist(list(rows), schema=schema)  # keys not in the schema are left out
    except Exception:  # some row does not fit: find which, below
        pass
    else:
        return {}
    problems: dict[int, str] = {}
    for index, row in enumerate(rows):
        for name, value in row.items():
            kind = types.get(name)
            if kind is None or value is None:
                continue
            try:
                pa.array([value], type=kind)
            except Exception as exc:
                problems[index] = (
                    f"column {name!r} ({kind}) cannot hold {value!r:.80}: {one_line(exc, 200)}"
                )
                break
    return problems
