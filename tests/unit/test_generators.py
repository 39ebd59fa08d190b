"""Generator tests: pure parts always; database parts against CDC_TEST_PG_DSN when it is set."""

import datetime as dt
import os
import uuid
from decimal import Decimal

import pytest

from cdc_support.generators import (
    DDL,
    KEY_COLUMNS,
    NORMALIZERS,
    TABLE_COLUMNS,
    EcommerceGenerator,
    Operation,
    bulk_load,
    create_schema,
    fetch_table,
    mixed_workload,
    normalize_value,
)
from cdc_support.validation import compare_tables

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


# ------------------------------------------------------------------ with a real PostgreSQL

PG_DSN = os.environ.get("CDC_TEST_PG_DSN")
needs_pg = pytest.mark.skipif(not PG_DSN, reason="set CDC_TEST_PG_DSN to run PostgreSQL tests")


class _Schemas:
    """Throwaway schemas on the test server, dropped (with their connections) at teardown."""

    def __init__(self, dsn):
        import psycopg

        self.dsn = dsn
        self.admin = psycopg.connect(dsn, autocommit=True)
        self.names = []
        self.conns = []

    def new(self):
        from psycopg import sql

        name = f"gen_{uuid.uuid4().hex[:12]}"
        self.admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
        self.names.append(name)
        return name

    def connect(self, schema, autocommit=False):
        import psycopg

        conn = psycopg.connect(self.dsn, autocommit=autocommit, options=f"-c search_path={schema}")
        self.conns.append(conn)
        return conn

    def close(self):
        from psycopg import sql

        for conn in self.conns:
            conn.close()
        for name in self.names:
            self.admin.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))
        self.admin.close()


@pytest.fixture
def pg_schemas():
    schemas = _Schemas(PG_DSN)
    try:
        yield schemas
    finally:
        schemas.close()


@pytest.fixture
def pg_schema(pg_schemas):
    """A fresh schema; yields a connection factory bound to it."""
    name = pg_schemas.new()
    return lambda autocommit=False: pg_schemas.connect(name, autocommit)


def _load(conn, seed=11):
    gen = EcommerceGenerator(seed)
    create_schema(conn)
    customers, products = gen.customers(30), gen.products(10)
    orders = gen.orders(20, customers)
    items = gen.order_items(orders, products)
    for table, rows in (
        ("customers", customers),
        ("products", products),
        ("orders", orders),
        ("order_items", items),
    ):
        assert bulk_load(conn, table, rows) == len(rows)
    return gen, {
        "customers": customers,
        "products": products,
        "orders": orders,
        "order_items": items,
    }


@needs_pg
def test_bulk_load_and_fetch_round_trip(pg_schema):
    conn = pg_schema()
    _, data = _load(conn)
    for table, rows in data.items():
        keys = KEY_COLUMNS[table]
        expected = {tuple(r[k] for k in keys): r for r in rows}
        actual = fetch_table(conn, table, keys)
        report = compare_tables(expected, actual)
        assert report.ok, report.summary()
    assert bulk_load(conn, "customers", []) == 0


@needs_pg
def test_create_schema_is_idempotent_and_sets_replica_identity(pg_schema):
    conn = pg_schema()
    create_schema(conn)
    create_schema(conn, replica_identity_full=True)
    rows = conn.execute(
        "SELECT relname, relreplident FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = current_schema() AND relkind = 'r' ORDER BY relname"
    ).fetchall()
    assert rows == [(t, "f") for t in sorted(TABLE_COLUMNS)]


def _replay(start, log):
    state = dict(start)
    for op in log:
        if op.op == "delete":
            del state[op.key]
        else:
            state[op.key] = op.row
    return state


@needs_pg
@pytest.mark.parametrize("table", ["customers", "products", "orders"])
@pytest.mark.parametrize("autocommit", [False, True])
def test_mixed_workload(pg_schema, table, autocommit):
    conn = pg_schema(autocommit=autocommit)
    gen, _ = _load(conn)
    start = fetch_table(conn, table, ["id"])
    log = mixed_workload(conn, gen, 60, table=table)
    assert len(log) == 60
    assert all(isinstance(op, Operation) and op.table == table for op in log)
    kinds = {op.op for op in log}
    assert kinds == {"insert", "update", "delete"}
    assert all(op.committed_at is not None for op in log)
    # every op is visible to another session (committed), and the log replays to the table
    other = pg_schema()
    report = compare_tables(_replay(start, log), fetch_table(other, table, ["id"]))
    assert report.ok, report.summary()
    # updates really change values
    before = dict(start)
    for op in log:
        if op.op == "update":
            assert op.row != before[op.key]
        if op.op == "delete":
            assert op.row == before.pop(op.key)
        else:
            before[op.key] = op.row
    # new keys are above the existing ones
    inserted = [op.key[0] for op in log if op.op == "insert"]
    assert min(inserted) > max(k[0] for k in start)


@needs_pg
def test_mixed_workload_is_deterministic(pg_schemas):
    logs = []
    for _ in range(2):
        conn = pg_schemas.connect(pg_schemas.new())
        gen, _ = _load(conn, seed=99)
        log = mixed_workload(conn, gen, 40, mix=(1, 1, 1))
        logs.append([(op.op, op.key, op.row) for op in log])
    assert logs[0] == logs[1]


@needs_pg
def test_mixed_workload_single_transaction(pg_schema):
    conn = pg_schema()
    gen, _ = _load(conn)
    start = fetch_table(conn, "customers", ["id"])
    log = mixed_workload(conn, gen, 20, commit_each=False)
    assert all(op.committed_at is None for op in log)
    txids = (
        pg_schema()
        .execute(
            "SELECT DISTINCT xmin::text FROM customers WHERE id > %s", [max(k[0] for k in start)]
        )
        .fetchall()
    )
    assert len(txids) <= 1  # all inserted rows come from one transaction
    other = pg_schema()
    assert compare_tables(_replay(start, log), fetch_table(other, "customers", ["id"])).ok


@needs_pg
def test_mixed_workload_on_an_empty_table_inserts_first(pg_schema):
    conn = pg_schema()
    create_schema(conn)
    log = mixed_workload(conn, EcommerceGenerator(1), 5, mix=(0, 1, 1))
    assert log[0].op == "insert"
    assert log[0].key == (1,)


def test_mixed_workload_rejects_bad_arguments():
    gen = EcommerceGenerator(1)
    with pytest.raises(ValueError, match="order_items"):
        mixed_workload(None, gen, 1, table="order_items")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="three non-negative weights"):
        mixed_workload(None, gen, 1, mix=(1, -1, 0))  # type: ignore[arg-type]
