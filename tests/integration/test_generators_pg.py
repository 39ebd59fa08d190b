"""Generator tests against the stack's real PostgreSQL (a database of their own each)."""

import uuid

import pytest

from cdc_support.checks.integrity import compare_tables
from cdc_support.postgres.loader import bulk_load, create_schema, fetch_table, mixed_workload
from cdc_support.workload import KEY_COLUMNS, TABLE_COLUMNS, EcommerceGenerator, Operation

# ------------------------------------------------------------------ pure parts


# ------------------------------------------------------------------ with a real PostgreSQL


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
def pg_schemas(pg_database):
    schemas = _Schemas(pg_database.dsn)
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


def test_mixed_workload_is_deterministic(pg_schemas):
    logs = []
    for _ in range(2):
        conn = pg_schemas.connect(pg_schemas.new())
        gen, _ = _load(conn, seed=99)
        log = mixed_workload(conn, gen, 40, mix=(1, 1, 1))
        logs.append([(op.op, op.key, op.row) for op in log])
    assert logs[0] == logs[1]


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
