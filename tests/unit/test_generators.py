"""Generator tests that need no database (see tests/integration for the PostgreSQL ones)."""

import ast
import contextlib
import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from cdc_support import workload
from cdc_support.checks.integrity import compare_tables
from cdc_support.postgres.loader import DDL
from cdc_support.workload import (
    KEY_COLUMNS,
    NORMALIZERS,
    TABLE_COLUMNS,
    EcommerceGenerator,
    normalize_value,
    run_mix,
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


# ------------------------------------------------------------------ the operation mix


class DictWriter:
    """A TableWriter over a dict of rows: records transactions, returns rows like a database."""

    def __init__(self, rows=()):
        self.rows = {row["id"]: dict(row) for row in rows}
        self.transactions = 0

    def keys(self, table):
        return sorted(self.rows) if table == "customers" else []

    @contextlib.contextmanager
    def transaction(self):
        self.transactions += 1
        yield

    def insert(self, table, row):
        self.rows[row["id"]] = dict(row)
        return dict(row)

    def current(self, table, key):
        return dict(self.rows.get(key, {}))

    def update(self, table, key, current, changes):
        self.rows[key].update(changes)
        return dict(self.rows[key])

    def delete(self, table, key):
        return self.rows.pop(key)


def _mix(seed, n_ops, **options):
    writer = DictWriter(EcommerceGenerator(seed).customers(10))
    return writer, run_mix(writer, EcommerceGenerator(seed + 1), n_ops, **options)


def test_the_operation_mix_is_seeded_and_its_log_replays_to_the_table():
    writer, log = _mix(3, 200)
    assert [(o.op, o.key) for o in log] == [(o.op, o.key) for o in _mix(3, 200)[1]]
    assert {o.op for o in log} == {"insert", "update", "delete"}
    assert writer.transactions == 200 and all(o.committed_at for o in log)
    replayed = {row["id"]: row for row in EcommerceGenerator(3).customers(10)}
    for o in log:
        if o.op == "delete":
            assert replayed.pop(o.key[0]) == o.row, "a delete logs the removed row"
        else:
            replayed[o.key[0]] = o.row
    assert replayed == writer.rows
    inserted = [o.key[0] for o in log if o.op == "insert"]
    assert inserted == list(range(11, 11 + len(inserted))), "new keys follow the existing ones"


def test_the_operation_mix_in_one_transaction_and_its_errors():
    writer, log = _mix(4, 30, commit_each=False)
    assert writer.transactions == 1 and all(o.committed_at is None for o in log)
    with pytest.raises(ValueError, match="order_items"):
        run_mix(DictWriter(), EcommerceGenerator(0), 1, table="order_items")
    with pytest.raises(ValueError, match="three non-negative weights"):
        run_mix(DictWriter(), EcommerceGenerator(0), 1, mix=(1, 1))


def test_the_workload_module_speaks_no_sql_dialect():
    source = Path(workload.__file__).read_text(encoding="utf-8")
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert not imported & {"psycopg", "psycopg2", "pymysql", "sqlalchemy"}
    assert "CREATE TABLE" not in source and "SELECT " not in source
