"""The seeded e-commerce workload, in no SQL dialect: rows, the operation mix, its log.

Tables (their DDL and the writing are per source: :mod:`cdc_support.postgres.loader`,
:mod:`cdc_support.mysql.loader`)::

    customers(id PK, email UNIQUE, full_name, country char(2), created_at timestamp)
    products(id PK, sku, name, price numeric(10,2), stock)
    orders(id PK, customer_id, status, total numeric(12,2), updated_at timestamp)
    order_items(order_id, line_no, product_id, quantity, unit_price numeric(10,2),
                PK(order_id, line_no))

Keys are chosen by the generator (no sequences), so it knows every key it wrote. Order totals
are random amounts, not sums of their items. Timestamps come from a generator clock starting
at 2024-01-01 UTC, never from ``now()``, so rows are identical for a seed.

:func:`run_mix` draws a seeded mix of inserts, updates and deletes and logs each
:class:`Operation`; a :class:`TableWriter` of the source's loader does the writing.

Debezium settings the pipelines use, and what that means for comparing rows:

* ``decimal.handling.mode=string``: ``numeric`` arrives as a string (``"12.50"``) where
  psycopg reads a ``Decimal`` -> compare with :func:`~cdc_support.checks.integrity.decimal_string`;
* ``time.precision.mode=adaptive_time_microseconds`` (default-like): ``timestamptz`` arrives
  as an ISO-8601 string (``"2024-01-01T10:00:00.123456Z"``) where psycopg reads an aware
  ``datetime`` -> compare with :func:`~cdc_support.checks.integrity.utc_timestamp`; plain
  ``timestamp`` would arrive as epoch microseconds and ``date`` as days since epoch (the
  generated tables use neither);
* ``char(n)`` arrives blank-padded like psycopg reads it; ``NORMALIZERS`` strips it anyway.

Pass :data:`NORMALIZERS` (or :func:`normalize_value` per column) to
``validation.compare_tables`` to compare source rows with rows rebuilt from Debezium events.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import random
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, Protocol

from faker import Faker

from cdc_support.checks.integrity import decimal_string, utc_timestamp

__all__ = [
    "DEFAULT_MIX",
    "KEY_COLUMNS",
    "NORMALIZERS",
    "TABLE_COLUMNS",
    "WORKLOAD_TABLES",
    "EcommerceGenerator",
    "Operation",
    "TableWriter",
    "choose_op",
    "normalised_mix",
    "normalize_value",
    "run_mix",
]

TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "customers": ("id", "email", "full_name", "country", "created_at"),
    "products": ("id", "sku", "name", "price", "stock"),
    "orders": ("id", "customer_id", "status", "total", "updated_at"),
    "order_items": ("order_id", "line_no", "product_id", "quantity", "unit_price"),
}
KEY_COLUMNS: dict[str, tuple[str, ...]] = {
    "customers": ("id",),
    "products": ("id",),
    "orders": ("id",),
    "order_items": ("order_id", "line_no"),
}
ORDER_STATUSES: tuple[str, ...] = ("new", "paid", "packed", "shipped", "delivered", "cancelled")
_EPOCH = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


# --------------------------------------------------------------------------- normalisation


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def normalize_value(value: Any) -> Any:
    """Normalise a value read from PostgreSQL or from Debezium JSON to one comparable form.

    Decimal or numeric string -> canonical decimal string (``"12.50"`` -> ``"12.5"``);
    aware datetime or ISO date-time string with Z/offset -> UTC ISO with microseconds and
    ``Z``; anything else unchanged. Use it for numeric/timestamp columns only: it would also
    turn a text column holding ``"007"`` into ``"7"``.
    """
    if isinstance(value, dt.datetime):
        return utc_timestamp(value)
    if isinstance(value, str):
        as_timestamp = utc_timestamp(value)
        if as_timestamp is not value:
            return as_timestamp
    return decimal_string(value)


NORMALIZERS: dict[str, Callable[[Any], Any]] = {
    # customers
    "country": _strip,
    "created_at": utc_timestamp,
    # products / order_items
    "price": decimal_string,
    "unit_price": decimal_string,
    # orders
    "total": decimal_string,
    "updated_at": utc_timestamp,
}
"""Column normalizers for the generated tables (column names do not clash between them)."""


# --------------------------------------------------------------------------- generator


class EcommerceGenerator:
    """Seeded generator of customers, products, orders and order items (lists of dicts).

    Keys continue from call to call (``customers(3)`` twice gives ids 1..6), so a generator
    knows every key it produced. Same seed and same call sequence -> same rows.
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.faker = Faker("en_US")
        self.faker.seed_instance(seed)
        self.random = random.Random(seed)
        self._next_id: dict[str, int] = {t: 1 for t in TABLE_COLUMNS}
        self._clock_us = 0

    # -- building blocks
    def next_key(self, table: str) -> int:
        """Reserve and return the next integer key for ``table``."""
        key = self._next_id[table]
        self._next_id[table] = key + 1
        return key

    def reserve_keys_above(self, table: str, max_existing: int | None) -> None:
        """Make sure future keys for ``table`` are greater than ``max_existing``."""
        if max_existing is not None:
            self._next_id[table] = max(self._next_id[table], max_existing + 1)

    def timestamp(self) -> dt.datetime:
        """The generator clock: advances by 1 ms .. 60 s per call from 2024-01-01 UTC."""
        self._clock_us += self.random.randrange(1_000, 60_000_000)
        return _EPOCH + dt.timedelta(microseconds=self._clock_us)

    def money(self, low_cents: int, high_cents: int) -> Decimal:
        """A Decimal with two places between the given cent amounts (inclusive)."""
        return Decimal(self.random.randint(low_cents, high_cents)).scaleb(-2)

    def country(self, other_than: str | None = None) -> str:
        """A two-letter country code, different from ``other_than`` when given."""
        while True:
            code = self.faker.country_code()
            if other_than is None or code != other_than.strip():
                return code

    # -- rows
    def customer(self, key: int | None = None) -> dict[str, Any]:
        """One customer row (a new key unless given)."""
        key = self.next_key("customers") if key is None else key
        user = self.faker.user_name()
        domain = self.faker.free_email_domain()
        return {
            "id": key,
            "email": f"{user}.{key}@{domain}",
            "full_name": self.faker.name(),
            "country": self.country(),
            "created_at": self.timestamp(),
        }

    def product(self, key: int | None = None) -> dict[str, Any]:
        """One product row (a new key unless given)."""
        key = self.next_key("products") if key is None else key
        return {
            "id": key,
            "sku": f"SKU-{key:06d}-{self.faker.bothify('??##').upper()}",
            "name": f"{self.faker.color_name()} {self.faker.word()}".title(),
            "price": self.money(99, 99_999),
            "stock": self.random.randint(0, 500),
        }

    def order(self, customer_ids: Sequence[int], key: int | None = None) -> dict[str, Any]:
        """One order row for a random customer from ``customer_ids`` (a new key unless given)."""
        if not customer_ids:
            raise ValueError("orders need at least one customer id")
        key = self.next_key("orders") if key is None else key
        return {
            "id": key,
            "customer_id": self.random.choice(customer_ids),
            "status": self.random.choice(ORDER_STATUSES[:3]),
            "total": self.money(500, 500_000),
            "updated_at": self.timestamp(),
        }

    def customers(self, n: int) -> list[dict[str, Any]]:
        """``n`` new customers."""
        return [self.customer() for _ in range(n)]

    def products(self, n: int) -> list[dict[str, Any]]:
        """``n`` new products."""
        return [self.product() for _ in range(n)]

    def orders(self, n: int, customers: Sequence[Mapping[str, Any] | int]) -> list[dict[str, Any]]:
        """``n`` new orders referencing customers (rows with ``id`` or plain ids)."""
        ids = [_id_of(c) for c in customers]
        return [self.order(ids) for _ in range(n)]

    def order_items(
        self,
        orders: Sequence[Mapping[str, Any] | int],
        products: Sequence[Mapping[str, Any]],
        *,
        max_lines: int = 4,
    ) -> list[dict[str, Any]]:
        """1..max_lines items per order, each a random product at its price."""
        if not products:
            raise ValueError("order items need at least one product")
        items = []
        for order in orders:
            order_id = _id_of(order)
            for line_no in range(1, self.random.randint(1, max_lines) + 1):
                product = self.random.choice(products)
                items.append(
                    {
                        "order_id": order_id,
                        "line_no": line_no,
                        "product_id": product["id"],
                        "quantity": self.random.randint(1, 5),
                        "unit_price": product["price"],
                    }
                )
        return items

    def changes(self, table: str, current: Mapping[str, Any]) -> dict[str, Any]:
        """New values for a few columns of ``current`` that differ from it (for updates)."""
        if table == "customers":
            name = self.faker.name()
            while name == current.get("full_name"):
                name = self.faker.name()
            return {"full_name": name, "country": self.country(other_than=current.get("country"))}
        if table == "products":
            price = self.money(99, 99_999)
            while price == current.get("price"):
                price = self.money(99, 99_999)
            return {"price": price, "stock": (int(current.get("stock") or 0) + 1) % 1000}
        if table == "orders":
            statuses = [s for s in ORDER_STATUSES if s != current.get("status")]
            return {"status": self.random.choice(statuses), "updated_at": self.timestamp()}
        raise ValueError(f"no update rule for table {table!r}; choose one of {WORKLOAD_TABLES}")

    def new_row(self, table: str, existing_ids: Sequence[int] = ()) -> dict[str, Any]:
        """A new row for ``table`` with a fresh key (orders pick a customer from existing ids)."""
        if table == "customers":
            return self.customer()
        if table == "products":
            return self.product()
        if table == "orders":
            return self.order(existing_ids or [1])
        raise ValueError(f"no insert rule for table {table!r}; choose one of {WORKLOAD_TABLES}")


def _id_of(item: Mapping[str, Any] | int) -> int:
    return int(item["id"]) if isinstance(item, Mapping) else int(item)


# --------------------------------------------------------------------------- workload

WORKLOAD_TABLES = ("customers", "products", "orders")
OpKind = Literal["insert", "update", "delete"]


@dataclass
class Operation:
    """One write done by :func:`run_mix`.

    ``row`` is the row after the write for insert/update and the removed row for delete (as
    the source's :class:`TableWriter` returned it); ``committed_at`` is the client's
    wall-clock time (epoch seconds) right after the commit, when each operation was committed
    on its own.
    """

    op: OpKind
    table: str
    key: tuple[Any, ...]
    row: dict[str, Any] | None
    committed_at: float | None = None


class TableWriter(Protocol):
    """How one database writes the operations :func:`run_mix` draws (a source's loader)."""

    def keys(self, table: str) -> list[int]:
        """The ids in ``table``, in key order (any open transaction committed first)."""
        ...

    def transaction(self) -> AbstractContextManager[Any]:
        """One transaction around what runs inside."""
        ...

    def insert(self, table: str, row: dict[str, Any]) -> dict[str, Any] | None:
        """INSERT ``row``; the row as written."""
        ...

    def current(self, table: str, key: int) -> dict[str, Any]:
        """The row of ``key`` about to be updated (empty if none)."""
        ...

    def update(
        self, table: str, key: int, current: dict[str, Any], changes: dict[str, Any]
    ) -> dict[str, Any] | None:
        """UPDATE the row of ``key`` with ``changes``; the row after."""
        ...

    def delete(self, table: str, key: int) -> dict[str, Any] | None:
        """DELETE the row of ``key``; the removed row."""
        ...


def choose_op(
    gen: EcommerceGenerator, p_insert: float, p_update: float, *, has_rows: bool
) -> OpKind:
    """Draw the next operation kind from the generator's random stream (insert if no rows)."""
    draw = gen.random.random()
    if draw < p_insert or not has_rows:
        return "insert"
    if draw < p_insert + p_update:
        return "update"
    return "delete"


def normalised_mix(mix: Sequence[float]) -> tuple[float, float, float]:
    """(insert, update, delete) weights scaled to sum to 1; ValueError on a bad mix."""
    if len(mix) != 3 or any(m < 0 for m in mix) or sum(mix) <= 0:
        raise ValueError(
            f"mix must be three non-negative weights (insert, update, delete), got {tuple(mix)}"
        )
    total = sum(mix)
    return (mix[0] / total, mix[1] / total, mix[2] / total)


DEFAULT_MIX = (0.5, 0.35, 0.15)
"""Insert, update and delete weights of a workload."""


def run_mix(
    writer: TableWriter,
    gen: EcommerceGenerator,
    n_ops: int,
    *,
    table: str = "customers",
    mix: Sequence[float] = DEFAULT_MIX,
    commit_each: bool = True,
) -> list[Operation]:
    """Write ``n_ops`` inserts/updates/deletes on ``table`` through ``writer``; the log.

    Starts from the keys already in the table (read in key order) and tracks them; updates
    and deletes pick existing keys (an op falls back to insert when the table is empty).
    With ``commit_each`` every operation is its own transaction (its ``committed_at`` taken
    right after the commit), otherwise all run in one transaction. Deterministic for a given
    seed and starting state.
    """
    if table not in WORKLOAD_TABLES:
        raise ValueError(
            f"mixed_workload supports tables {WORKLOAD_TABLES} (single bigint key), not {table!r}"
        )
    p_insert, p_update, _ = normalised_mix(mix)
    keys = writer.keys(table)
    customer_ids = writer.keys("customers") if table == "orders" else []
    gen.reserve_keys_above(table, max(keys) if keys else None)
    log: list[Operation] = []
    with contextlib.nullcontext() if commit_each else writer.transaction():
        for _ in range(n_ops):
            kind = choose_op(gen, p_insert, p_update, has_rows=bool(keys))
            with writer.transaction() if commit_each else contextlib.nullcontext():
                key, row = _write_one(writer, gen, table, kind, keys, customer_ids)
            committed_at = time.time() if commit_each else None
            log.append(Operation(kind, table, (key,), row, committed_at))
    return log


def _write_one(
    writer: TableWriter,
    gen: EcommerceGenerator,
    table: str,
    kind: OpKind,
    keys: list[int],
    customer_ids: Sequence[int],
) -> tuple[int, dict[str, Any] | None]:
    """One operation of ``kind``; ``keys`` follows it. Returns the key and the row."""
    if kind == "insert":
        row = gen.new_row(table, customer_ids)
        keys.append(row["id"])
        return row["id"], writer.insert(table, row)
    index = gen.random.randrange(len(keys))
    key = keys[index]
    if kind == "update":
        current = writer.current(table, key)
        return key, writer.update(table, key, current, gen.changes(table, current))
    row = writer.delete(table, key)
    keys[index] = keys[-1]
    keys.pop()
    return key, row
