"""Generator tests that need no database (see tests/integration for the PostgreSQL ones)."""

import datetime as dt
from decimal import Decimal

import pytest

from cdc_support.checks.integrity import compare_tables
from cdc_support.workload import (
    DDL,
    KEY_COLUMNS,
    NORMALIZERS,
    TABLE_COLUMNS,
    EcommerceGenerator,
    normalize_value,
)

# ------------------------------------------------------------------ pure parts


def _dataset(seed):
    gen = EcommerceGenerator(seed)
    customers = gen.customers(20)
    products = gen.products(10)
    orders = gen.orders(15, customers)
    items = gen.order_items(orders, products)
    return customers, products, orders, items


def test_same_seed_same_rows():
    assert _dataset(42) == _dataset(42)


def test_different_seed_different_rows():
    assert _dataset(1) != _dataset(2)


def test_rows_have_the_table_columns_and_types():
    customers, products, orders, items = _dataset(7)
    for table, rows in (
        ("customers", customers),
        ("products", products),
        ("orders", orders),
        ("order_items", items),
    ):
        assert rows
        assert all(tuple(row) == TABLE_COLUMNS[table] for row in rows)
    assert [c["id"] for c in customers] == list(range(1, 21))
    assert len({c["email"] for c in customers}) == 20
    assert all(len(c["country"]) == 2 for c in customers)
    assert all(c["created_at"].tzinfo is not None for c in customers)
    assert all(
        isinstance(p["price"], Decimal) and p["price"].as_tuple().exponent == -2 for p in products
    )
    assert {o["customer_id"] for o in orders} <= {c["id"] for c in customers}
    assert {i["product_id"] for i in items} <= {p["id"] for p in products}
    keys = [(i["order_id"], i["line_no"]) for i in items]
    assert len(keys) == len(set(keys))


def test_keys_continue_between_calls():
    gen = EcommerceGenerator(0)
    assert [c["id"] for c in gen.customers(3)] == [1, 2, 3]
    assert [c["id"] for c in gen.customers(2)] == [4, 5]
    gen.reserve_keys_above("customers", 100)
    assert gen.customers(1)[0]["id"] == 101
    gen.reserve_keys_above("customers", 5)  # never goes back
    assert gen.customers(1)[0]["id"] == 102


def test_generator_clock_moves_forward_from_2024():
    gen = EcommerceGenerator(0)
    stamps = [gen.timestamp() for _ in range(100)]
    assert stamps == sorted(stamps)
    assert len(set(stamps)) == 100
    assert stamps[0] > dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


@pytest.mark.parametrize("table", ["customers", "products", "orders"])
def test_changes_differ_from_the_current_row(table):
    gen = EcommerceGenerator(3)
    row = gen.new_row(table, [1, 2, 3])
    for _ in range(50):
        changes = gen.changes(table, row)
        assert changes
        assert all(row[c] != v for c, v in changes.items()), changes
        row = {**row, **changes}


def test_unknown_table_errors_name_the_choices():
    gen = EcommerceGenerator(0)
    with pytest.raises(ValueError, match="customers"):
        gen.changes("order_items", {})
    with pytest.raises(ValueError, match="customers"):
        gen.new_row("nope")


def test_ddl_mentions_every_table():
    for table in TABLE_COLUMNS:
        assert f"CREATE TABLE IF NOT EXISTS {table}" in DDL


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("12.50"), "12.5"),
        ("12.50", "12.5"),
        (
            dt.datetime(2024, 1, 1, 11, tzinfo=dt.timezone(dt.timedelta(hours=1))),
            "2024-01-01T10:00:00.000000Z",
        ),
        ("2024-01-01T10:00:00Z", "2024-01-01T10:00:00.000000Z"),
        ("Ann", "Ann"),
        (None, None),
        (3, "3"),
    ],
)
def test_normalize_value(value, expected):
    assert normalize_value(value) == expected


def _as_debezium_json(row):
    """What Debezium (decimal.handling.mode=string) puts in 'after' for a generated row."""
    out = {}
    for column, value in row.items():
        if isinstance(value, Decimal):
            out[column] = str(value)
        elif isinstance(value, dt.datetime):
            out[column] = value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
        else:
            out[column] = value
    return out


def test_normalizers_make_source_and_debezium_rows_compare_equal():
    customers, products, orders, items = _dataset(5)
    for table, rows in (
        ("customers", customers),
        ("products", products),
        ("orders", orders),
        ("order_items", items),
    ):
        keys = KEY_COLUMNS[table]
        source = {tuple(r[k] for k in keys): r for r in rows}
        carried = {k: _as_debezium_json(r) for k, r in source.items()}
        report = compare_tables(source, carried, normalizers=NORMALIZERS)
        assert report.ok, report.summary()
    # a numeric with a trailing zero ("12.50") only matches Decimal("12.50") once normalised
    source = {(1,): {"id": 1, "price": Decimal("12.50")}}
    carried = {(1,): {"id": 1, "price": "12.50"}}
    assert not compare_tables(source, carried).ok
    assert compare_tables(source, carried, normalizers=NORMALIZERS).ok
