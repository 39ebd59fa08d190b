"""Steps for features/iceberg/snapshot_cdc.feature: the table and the writes committed to it.

Every scenario gets its own SQL catalog and warehouse folder under ``tmp_path`` (the plugin's
``iceberg_warehouse`` fixture, :mod:`pytest_cdc.fixtures.lakehouse`). The table is a
:class:`~cdc_support.iceberg.generated.GeneratedIcebergTable`: it keeps a model of its rows
that every write updates, and records what each write should have changed, key by key.
"""

from __future__ import annotations

import random
from pathlib import Path

from pytest_bdd import given, parsers, when

from cdc_support.iceberg import snapshot_info
from cdc_support.iceberg.generated import GeneratedIcebergTable
from cdc_support.iceberg.warehouse import IcebergWarehouse
from cdc_support.workload import EcommerceGenerator
from pytest_cdc.report import evidence
from steps.iceberg_attach import attach_writes

TABLE = "shop.products"

HISTORIES: dict[str, tuple[str, ...]] = {
    "inserted, then updated": ("insert", "update"),
    "inserted, updated, then deleted": ("insert", "update", "delete"),
    "updated twice": ("update", "update"),
    "updated, then deleted": ("update", "delete"),
    "deleted, then inserted with new values": ("delete", "insert new values"),
    "deleted, then inserted unchanged": ("delete", "insert original"),
}


@given(
    parsers.parse(
        "an Iceberg products table keyed by id, with {count:d} products generated "
        "with seed {seed:d}"
    ),
    target_fixture="iceberg",
)
def iceberg_products(
    iceberg_warehouse: IcebergWarehouse, count: int, seed: int
) -> GeneratedIcebergTable:
    """Create the table (identifier field id) and append the generated products."""
    iceberg = GeneratedIcebergTable(iceberg_warehouse.catalog, TABLE, EcommerceGenerator(seed))
    attach_writes(iceberg, [iceberg.load(count)])
    evidence.attach_html(
        "first generated products",
        evidence.table_html(f"products (seed {seed})", iceberg.generated[:10]),
    )
    evidence.attach_json("table schema", {"schema": str(iceberg.table.schema())})
    evidence.attach_text("catalog", iceberg_warehouse.describe())
    return iceberg


@when(parsers.parse("I append {count:d} new products"))
def append_products(iceberg: GeneratedIcebergTable, count: int) -> None:
    """Append new keys: one append snapshot."""
    attach_writes(iceberg, [iceberg.append(count)])


@when(
    parsers.parse("I upsert {changed:d} changed, {unchanged:d} unchanged and {new:d} new products")
)
def upsert_products(iceberg: GeneratedIcebergTable, changed: int, unchanged: int, new: int) -> None:
    """Upsert on the identifier field: changed versions, identical rows and new keys."""
    attach_writes(iceberg, [iceberg.upsert(changed, unchanged, new)])


@when(parsers.parse("I delete the products with stock under {limit:d}"))
def delete_by_filter(iceberg: GeneratedIcebergTable, limit: int) -> None:
    """Delete by a filter on a non-key column."""
    attach_writes(iceberg, [iceberg.delete_below("stock", limit)])


@when(
    parsers.re(
        r"I overwrite the products with id (?P<low>\d+) to (?P<high>\d+) by (?P<changed>\d+) "
        r"changed, (?P<unchanged>\d+) unchanged and (?P<new>\d+) new products?"
    ),
    converters={"low": int, "high": int, "changed": int, "unchanged": int, "new": int},
)
def overwrite_with_filter(
    iceberg: GeneratedIcebergTable, low: int, high: int, changed: int, unchanged: int, new: int
) -> None:
    """Overwrite: delete the rows matching the filter, then append the given rows."""
    attach_writes(iceberg, [iceberg.overwrite_range(low, high, changed, unchanged, new)])


@when(
    parsers.parse("product {key:d} is {history}, one commit per write"),
    target_fixture="range_start",
)
def product_history(iceberg: GeneratedIcebergTable, key: int, history: str) -> int | None:
    """Each write of the history is its own pyiceberg commit (append, upsert or delete);
    the snapshot before them starts the range."""
    if history not in HISTORIES:
        raise AssertionError(f"unknown history {history!r}; the steps know {sorted(HISTORIES)}")
    start = iceberg.snapshot_id
    attach_writes(iceberg, iceberg.history(key, HISTORIES[history]))
    return start


@when("I note the current snapshot", target_fixture="noted_snapshot")
def note_snapshot(iceberg: GeneratedIcebergTable) -> int:
    """Remember the snapshot id (and so its timestamp) for time travel."""
    noted = iceberg.snapshot_id
    assert noted is not None, "the table has no snapshot"
    evidence.attach_json("noted snapshot", snapshot_info(iceberg.table, noted))
    return noted


@when("every snapshot but the current one is expired")
def expire_all_but_current(iceberg: GeneratedIcebergTable) -> None:
    """``table.maintenance.expire_snapshots().by_ids(...)``: gone from the metadata."""
    expired, kept = iceberg.expire_all_but_current()
    evidence.attach_json("expired snapshots", {"expired": expired, "kept": kept})


@when(
    parsers.parse(
        "another engine deletes the products with id {first:d} and {second:d} merge-on-read, "
        "writing a position delete file"
    )
)
def merge_on_read_delete(iceberg: GeneratedIcebergTable, first: int, second: int) -> None:
    """A position delete file and a delete snapshot, as Spark writes them (data files kept)."""
    attach_writes(iceberg, [iceberg.delete_positions([first, second])])
    deletes = iceberg.live_delete_files()
    evidence.attach_html(
        "delete files",
        evidence.table_html(
            "live delete files (content 1 = position deletes)",
            [{**r, "file_path": Path(r["file_path"]).name} for r in deletes],
        ),
    )


@when(parsers.parse("{rounds:d} more rounds of writes with seed {seed:d} are committed"))
def rounds_without_polls(iceberg: GeneratedIcebergTable, rounds: int, seed: int) -> None:
    """Writes while no consumer runs: each round is an upsert, a delete and an append."""
    rng = random.Random(seed)
    for i in range(1, rounds + 1):
        attach_writes(iceberg, iceberg.round(rng, f"round {i} (seed {seed}), no consumer"))
