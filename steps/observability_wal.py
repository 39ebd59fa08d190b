"""Steps for features/observability/wal_growth.feature: the WAL that the replication slots of an
idle database hold while another database writes, per Debezium heartbeat setting.

The measurement is :func:`cdc_support.postgres.wal_retention.measure_retention`; the
connectors come from ``pg_connector_factory`` (deleted, slots and publications dropped, after
the scenario), the writing database from ``pg_database_factory`` (dropped after it).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pytest_bdd import given, parsers, then, when

from cdc_support.kafka.connector import DebeziumConnector
from cdc_support.observability.prometheus import PrometheusClient, Sample
from cdc_support.postgres.connection import PgConnection
from cdc_support.postgres.wal_retention import (
    MB,
    RetentionRun,
    create_heartbeat_table,
    measure_retention,
    retention_plot_png,
)
from pytest_cdc.janitor import PgDatabase
from pytest_cdc.report import evidence
from pytest_cdc.stack import Stack

COUNTS = {"one": 1, "two": 2, "three": 3, "four": 4}
PROMETHEUS_AGREES = 0.02
"""How far (a share of the window's WAL) Prometheus' last value of a slot may be from the last
reading: after the readings, a slot's held WAL changes only by what the server writes meanwhile
(heartbeats, other databases) or by a confirming slot passing its next snapshot point."""
PROMETHEUS_TIMEOUT = 20.0
"""Seconds for Prometheus (scraping every second) to show the slots' values after the run."""


@dataclass(frozen=True)
class IdleCapture:
    """The connectors on the idle database, by the label of their row in the feature."""

    connectors: dict[str, DebeziumConnector]

    @property
    def slots(self) -> dict[str, str]:
        """Label -> replication slot name."""
        return {label: str(c.slot_name) for label, c in self.connectors.items()}

    def __repr__(self) -> str:
        return f"IdleCapture({', '.join(self.connectors)})"


def _rows(datatable: list[list[str]]) -> list[dict[str, str]]:
    header, *rows = datatable
    return [dict(zip(header, (cell.strip() for cell in row), strict=True)) for row in rows]


@given("a heartbeat table in that database, which the connectors' role may update")
def heartbeat_table(pg_conn: PgConnection, cdc_stack: Stack) -> None:
    """One row that heartbeat.action.query updates, as the connectors' role."""
    role, _ = cdc_stack.endpoints.postgres_cdc_login
    create_heartbeat_table(pg_conn, role)


@given(
    parsers.parse(
        "{count:w} Debezium connectors with heartbeat.interval.ms={interval:d} capture that "
        "database:"
    ),
    target_fixture="idle_capture",
)
def connectors_capture(
    pg_connector_factory: Callable[..., DebeziumConnector],
    datatable: list[list[str]],
    count: str,
    interval: int,
) -> IdleCapture:
    """One connector per row: the tables it captures and its heartbeat/flush settings."""
    rows = _rows(datatable)
    assert len(rows) == COUNTS.get(count), f"the sentence says {count}, the table has {len(rows)}"
    connectors = {}
    for row in rows:
        extra: dict[str, Any] = {
            "heartbeat.interval.ms": interval,
            "lsn.flush.mode": row["lsn.flush.mode"],
        }
        if row["heartbeat.action.query"]:
            extra["heartbeat.action.query"] = row["heartbeat.action.query"]
        tables = [t.strip() for t in row["captures"].split(",")]
        connectors[row["connector"]] = pg_connector_factory(tables, extra=extra)
    evidence.attach_json(
        "connectors on the idle database", {k: c.describe() for k, c in connectors.items()}
    )
    return IdleCapture(connectors)


@when(
    parsers.parse(
        "another database on the same server writes {mb:g} MB of WAL per second for "
        "{seconds:g} seconds"
    ),
    target_fixture="retention",
)
def another_database_writes(
    idle_capture: IdleCapture,
    pg_database_factory: Callable[[str], PgDatabase],
    cdc_stack: Stack,
    mb: float,
    seconds: float,
) -> RetentionRun:
    """Read every slot before, during and after the writing, and after a CHECKPOINT."""
    writer = pg_database_factory("writer")
    run = measure_retention(
        cdc_stack.postgres_dsn, writer.dsn, idle_capture.slots, seconds=seconds, rate=mb * MB
    )
    evidence.attach_json("WAL held per slot: the numbers", run.summary())
    evidence.attach_png(
        "WAL held per slot over time",
        retention_plot_png(
            run, title=f"the idle database's slots while another database writes {mb:g} MB/s"
        ),
    )
    return run


@then(
    parsers.parse(
        'the slot of "{label}" still holds all the WAL written in those {seconds:g} seconds'
    )
)
def holds_everything(retention: RetentionRun, label: str, seconds: float) -> None:
    """Its restart_lsn has not moved past the moment the writing began."""
    held, written = retention.final(label).retained, retention.wal_written
    assert held >= written, (
        f'the slot of "{label}" ({retention.slots[label]}) holds {held / MB:.1f} MB, less than '
        f"the {written / MB:.1f} MB written in {retention.window_seconds:.0f} s: it freed WAL"
    )


@then(parsers.parse("the slots of {labels} hold less than {percent:g}% of it"))
def hold_little(retention: RetentionRun, labels: str, percent: float) -> None:
    """The part of the window's WAL each still holds at the end (behind its restart_lsn)."""
    names = re.findall(r'"([^"]+)"', labels)
    assert names, f'name the slots in double quotes, e.g. "action query"; got {labels!r}'
    written = retention.wal_written
    too_much = [
        f'"{name}" still holds {100 * retention.share_of_window(name):.2f}% of it '
        f"({retention.final(name).retained / MB:.2f} MB in all)"
        for name in names
        if retention.share_of_window(name) >= percent / 100
    ]
    assert not too_much, (
        f"of the {written / MB:.1f} MB written, slots hold {percent:g}% or more: "
        + "; ".join(too_much)
    )


@then("Prometheus shows cdc_pg_slot_retained_wal_bytes of those slots, as measured")
def prometheus_agrees(retention: RetentionRun, cdc_prometheus: PrometheusClient) -> None:
    """The collector's series of each slot, against the last reading of the measurement."""
    slots = {slot: label for label, slot in retention.slots.items()}
    measured = {slot: retention.final(label).retained for slot, label in slots.items()}
    tolerance = PROMETHEUS_AGREES * retention.wal_written

    def agrees(samples: list[Sample]) -> bool:
        seen = {s.labels.get("slot"): s.value for s in samples}
        return set(seen) == set(measured) and all(
            abs(seen[slot] - kept) <= tolerance for slot, kept in measured.items()
        )

    promql = f'cdc_pg_slot_retained_wal_bytes{{slot=~"{"|".join(measured)}"}}'
    samples = cdc_prometheus.wait_for(
        promql,
        done=agrees,
        timeout=PROMETHEUS_TIMEOUT,
        expected=f"{promql} within {tolerance / MB:.1f} MB of the last readings "
        + ", ".join(f"{slots[s]}: {kept / MB:.2f} MB" for s, kept in measured.items()),
    )
    evidence.attach_json(
        "Prometheus: cdc_pg_slot_retained_wal_bytes",
        [
            {
                "slot": s.labels.get("slot"),
                "label": slots.get(s.labels.get("slot", "")),
                "prometheus_bytes": s.value,
                "measured_bytes": measured.get(s.labels.get("slot", "")),
            }
            for s in samples
        ],
    )
