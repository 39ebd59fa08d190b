"""Audit and polling rows -> change events, checkpoints, catalog diffs, the comparison table."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from cdc_support.checkpoint import CheckpointError
from cdc_support.events import ChangeEvent
from cdc_support.postgres import APPROACHES
from cdc_support.postgres.catalog import CatalogItem, catalog_diff
from cdc_support.postgres.measure import (
    ApproachOutcomes,
    WorkloadRun,
    comparison_rows,
    comparison_table_html,
)
from cdc_support.postgres.timestamp_polling import TimestampPollingApproach, polled_row_to_event
from cdc_support.postgres.trigger_audit import TriggerAuditApproach, audit_row_to_event
from cdc_support.workload import Operation

T0 = dt.datetime(2024, 1, 1, 12, 0, tzinfo=dt.UTC)


def _audit(op: str, before: dict | None, after: dict | None, **extra) -> dict:
    return {
        "id": 7,
        "table_schema": "public",
        "table_name": "customers",
        "op": op,
        "before": before,
        "after": after,
        "txid": 900,
        "committed_at": T0,
        **extra,
    }


def test_audit_rows_become_events_with_key_images_and_commit_time() -> None:
    row = {"id": 1, "full_name": "Ann", "total": Decimal("1.50")}
    c = audit_row_to_event(_audit("c", None, row), ("id",), observed_ts=5.0)
    assert (c.op, c.key, c.before, c.after) == ("c", (1,), None, row)
    assert c.commit_ts == T0.timestamp() and c.observed_ts == 5.0
    assert c.source == {
        "connector": "trigger-audit",
        "audit_id": 7,
        "txid": 900,
        "schema": "public",
        "table": "customers",
    }
    u = audit_row_to_event(_audit("u", row, {**row, "full_name": "Bo"}), ("id",), None)
    assert u.before == row and u.after is not None and u.after["full_name"] == "Bo"
    d = audit_row_to_event(_audit("d", row, None), ("id",), None)
    assert d.key == (1,) and d.after is None and d.row == row


@pytest.mark.parametrize(
    ("row", "words"),
    [
        (_audit("x", None, {"id": 1}), "unknown op 'x'"),
        (_audit("d", None, None), "has no row image"),
        (_audit("c", None, {"name": "a"}), r"key column\(s\) \['id'\]"),
    ],
)
def test_bad_audit_rows_are_refused(row: dict, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        audit_row_to_event(row, ("id",), None)


def test_polled_rows_are_inserts_the_first_time_then_updates_without_before() -> None:
    known: set[tuple] = set()
    row = {"id": 3, "full_name": "Ann", "updated_at": T0}
    first = polled_row_to_event(row, ("id",), column="updated_at", known=known, observed_ts=1.0)
    again = polled_row_to_event(
        {**row, "full_name": "Bo"}, ("id",), column="updated_at", known=known, observed_ts=2.0
    )
    assert (first.op, again.op) == ("c", "u")
    assert known == {(3,)}
    assert again.before is None and again.after is not None and again.after["full_name"] == "Bo"
    assert first.commit_ts == T0.timestamp()
    assert first.source["watermark"] == [T0.isoformat(), 3]
    with pytest.raises(ValueError, match="updated_at"):
        polled_row_to_event({"id": 1}, ("id",), column="updated_at", known=set(), observed_ts=None)


def test_a_polling_reader_checkpoint_is_bound_to_its_approach_database_and_table(
    tmp_path: Path,
) -> None:
    path = tmp_path / "sub" / "position.json"
    dsn = "host=127.0.0.1 port=5433 dbname=shop user=admin password=secret"
    audit = TriggerAuditApproach(dsn, "customers", ("id",), checkpoint=path)
    audit.checkpoint.save({"snapshot": "10:12:11"})
    again = TriggerAuditApproach(dsn, "public.customers", ("id",), checkpoint=path)
    assert again.checkpoint.load() == {"snapshot": "10:12:11"}
    assert "secret" not in path.read_text()
    for other in (
        TriggerAuditApproach(dsn.replace("shop", "crm"), "customers", ("id",), checkpoint=path),
        TriggerAuditApproach(dsn, "orders", ("id",), checkpoint=path),
        TimestampPollingApproach(dsn, "customers", ("id",), checkpoint=path),
    ):
        with pytest.raises(
            CheckpointError, match=r"belongs to 'trigger audit of public\.customers"
        ):
            other.checkpoint.load()
    memory = TimestampPollingApproach(dsn, "customers", ("id",))
    assert memory.checkpoint.path is None and memory.checkpoint.load() is None


def test_catalog_diff_hides_the_columns_of_added_tables_and_knows_schema_kinds() -> None:
    base = frozenset({CatalogItem("table", "customers"), CatalogItem("column", "customers.id")})
    audit = base | {
        CatalogItem("table", "cdc_audit"),
        CatalogItem("column", "cdc_audit.op"),
        CatalogItem("trigger", "cdc_audit_customers on customers"),
    }
    diff = catalog_diff(base, audit)
    assert [str(i) for i in diff.added] == [
        "table cdc_audit",
        "trigger cdc_audit_customers on customers",
    ]
    assert diff.schema_changed and diff.kinds() == {"table", "trigger"}
    slot = catalog_diff(base, base | {CatalogItem("replication slot", "s")})
    assert not slot.schema_changed and not slot.empty
    assert catalog_diff(audit, base).removed and catalog_diff(base, base).empty


def _event(op: str, key: int, before: dict | None, after: dict | None, lag: float) -> ChangeEvent:
    return ChangeEvent(op, (key,), before, after, {}, 100.0, 100.0 + lag)  # type: ignore[arg-type]


def test_comparison_rows_combine_observed_rules_with_the_measured_numbers() -> None:
    ops = [
        Operation("insert", "customers", (1,), {"id": 1}),
        Operation("update", "customers", (1,), {"id": 1}),
        Operation("delete", "customers", (1,), {"id": 1}),
    ]
    full = {"id": 1, "name": "a"}
    log = WorkloadRun(
        "logical decoding",
        ops,
        [
            _event("c", 1, None, full, 0.1),
            _event("u", 1, full, full, 0.2),
            _event("d", 1, full, None, 0.3),
        ],
        wal_bytes=2000,
        rows_written=3,
        writer_seconds=1.0,
        delivery_seconds=2.0,
        columns=("id", "name"),
    )
    polling = WorkloadRun(
        "timestamp polling",
        ops,
        [_event("c", 1, None, full, 0.5)],
        wal_bytes=3000,
        rows_written=3,
        writer_seconds=1.0,
        delivery_seconds=1.0,
        columns=("id", "name"),
    )
    baseline = WorkloadRun("none (baseline)", ops, [], 1000, 3, 1.0, 1.0)
    outcomes = ApproachOutcomes()
    outcomes.record("timestamp polling", "long transaction", yes=False, detail="never delivered")
    rows = {r["approach"]: r for r in comparison_rows([baseline, log, polling], outcomes)}
    assert rows["logical decoding"]["hard deletes"]["yes"] is True
    assert rows["logical decoding"]["before-image"]["yes"] is True
    assert rows["logical decoding"]["restart without loss"] == {
        "yes": None,
        "detail": "not run in this session",
    }
    assert rows["timestamp polling"]["hard deletes"]["yes"] is False
    assert rows["timestamp polling"]["long transaction"] == {
        "yes": False,
        "detail": "never delivered",
    }
    assert rows["logical decoding"]["events/s"] == 1.5
    assert rows["logical decoding"]["lag p50 s"] == pytest.approx(0.2)
    assert rows["none (baseline)"]["hard deletes"] is None
    page = comparison_table_html([baseline, log, polling], outcomes, note="a note")
    assert page.count("<tr>") == 4 and "2.00 x baseline" in page and "a note" in page
    with pytest.raises(ValueError, match="unknown rule"):
        outcomes.record("Debezium", "speed", yes=True, detail="")


def test_every_approach_is_registered_by_its_feature_name() -> None:
    assert set(APPROACHES) == {"logical decoding", "trigger audit", "timestamp polling", "Debezium"}


def test_the_comparison_colours_a_schema_change_as_a_cost_and_a_capability_as_a_gain() -> None:
    from cdc_support.postgres.measure import _rule_cell

    assert 'class="bad">yes' in _rule_cell("source schema change", {"yes": True, "detail": ""})
    assert 'class="good">no' in _rule_cell("source schema change", {"yes": False, "detail": ""})
    assert 'class="good">yes' in _rule_cell("hard deletes", {"yes": True, "detail": ""})
    assert 'class="bad">no' in _rule_cell("hard deletes", {"yes": False, "detail": ""})
