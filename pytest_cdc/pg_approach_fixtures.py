"""Fixtures for the PostgreSQL CDC approaches: capture factories that always clean up.

* ``pg_capture_factory``: ``make("logical decoding" | "trigger audit" | "timestamp polling" |
  "Debezium", table="customers")`` -> a started-on-demand
  :class:`~cdc_support.postgres.CaptureApproach` on the test's database (or another one
  from ``pg_database_factory``). Teardown closes each approach — dropping its slot and
  publication, triggers, functions, audit table, added column — and then **fails the test**
  if anything it added to a database is still there.
* ``logical_decoding_factory``: ``make(tables)`` -> a raw
  :class:`~cdc_support.postgres.LogicalDecodingConsumer` (own slot and publication,
  dropped after).
* ``pg_database_factory``: ``make(label)`` -> one more fresh database (dropped after).
* ``pg_approach_outcomes``: the session's record of what each rule scenario observed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import psycopg
import pytest

from cdc_support.naming import connector_name, database_name, publication_name, slot_name
from cdc_support.postgres import (
    APPROACHES,
    CaptureApproach,
    DebeziumApproach,
    DebeziumTarget,
    LogicalDecodingApproach,
    LogicalDecodingConsumer,
    TimestampPollingApproach,
    TriggerAuditApproach,
)
from cdc_support.postgres.catalog import CatalogItem, catalog_diff, catalog_snapshot
from cdc_support.postgres.measure import ApproachOutcomes
from cdc_support.postgres.source import primary_key
from pytest_cdc.fixtures import _Named
from pytest_cdc.janitor import PgDatabase, scenario_database
from pytest_cdc.stack import Stack

POLL_INTERVAL = 0.5
"""Seconds between two polls of the trigger audit and timestamp polling readers."""


class LeftoverObjects(AssertionError):
    """A capture approach left objects in the source database after it was closed."""


class CaptureFactory:
    """Makes capture approaches; :meth:`close_all` removes them and checks nothing is left."""

    def __init__(self, stack: Stack, database: PgDatabase, scenario: str, tmp_path: Path) -> None:
        self.stack = stack
        self.database = database
        self.scenario = scenario
        self.tmp_path = tmp_path
        self.made: list[tuple[CaptureApproach, PgDatabase]] = []
        self.baselines: dict[str, tuple[PgDatabase, frozenset[CatalogItem]]] = {}

    def __call__(
        self,
        approach: str,
        *,
        table: str = "customers",
        database: PgDatabase | None = None,
        poll_interval: float = POLL_INTERVAL,
    ) -> CaptureApproach:
        if approach not in APPROACHES:
            raise pytest.UsageError(
                f"unknown capture approach {approach!r}; choose one of {sorted(APPROACHES)}"
            )
        db = database or self.database
        with psycopg.connect(db.dsn, autocommit=True) as conn:
            if db.name not in self.baselines:
                self.baselines[db.name] = (db, catalog_snapshot(conn))
            key = primary_key(conn, table)
        name = slot_name(self.scenario, len(self.made))
        slug = re.sub(r"\W+", "-", approach.lower())
        checkpoint = self.tmp_path / f"{slug}-{len(self.made)}.checkpoint.json"
        made: CaptureApproach
        if approach == LogicalDecodingApproach.name:
            made = LogicalDecodingApproach(
                db.dsn,
                table,
                key,
                slot=name,
                publication=publication_name(name),
                replication_dsn=db.replication_dsn,
            )
        elif approach == TriggerAuditApproach.name:
            made = TriggerAuditApproach(
                db.dsn, table, key, interval=poll_interval, checkpoint=checkpoint
            )
        elif approach == TimestampPollingApproach.name:
            made = TimestampPollingApproach(
                db.dsn, table, key, interval=poll_interval, checkpoint=checkpoint
            )
        else:
            ep = self.stack.endpoints
            user, password = ep.postgres_cdc_login
            target = DebeziumTarget(
                connect_url=ep.connect_url,
                kafka_bootstrap=ep.kafka_bootstrap,
                host=ep.postgres_host,
                port=ep.postgres_port,
                user=user,
                password=password,
                dbname=db.name,
            )
            connector = connector_name("pg", self.scenario, len(self.made))
            made = DebeziumApproach(db.dsn, table, key, target=target, connector=connector)
        self.made.append((made, db))
        return made

    def close_all(self) -> None:
        """Close every approach (newest first), then check each database for leftovers."""
        problems: list[str] = []
        for approach, db in reversed(self.made):
            try:
                approach.close()
            except Exception as exc:
                problems.append(f"closing {approach.name} on {db.name}: {exc!r}")
        for db, before in self.baselines.values():
            with psycopg.connect(db.dsn, autocommit=True) as conn:
                left = catalog_diff(before, catalog_snapshot(conn)).added
            if left:
                problems.append(f"left in {db.name}: " + ", ".join(map(str, left)))
        if problems:
            raise LeftoverObjects("capture approaches did not clean up: " + "; ".join(problems))

    def __repr__(self) -> str:
        return f"capture approaches on {self.database.name}"


@pytest.fixture
def pg_database_factory(
    cdc_stack: Stack, cdc_scenario_name: str
) -> Iterator[Callable[[str], PgDatabase]]:
    """Make more fresh databases for this test (``make(label)``); all dropped afterwards."""
    with ExitStack() as stack:
        count = 0

        def make(label: str) -> PgDatabase:
            nonlocal count
            count += 1
            name = database_name(cdc_scenario_name, count, label)
            return stack.enter_context(
                scenario_database(
                    cdc_stack.postgres_dsn, name, cdc_dsn=cdc_stack.endpoints.postgres_cdc_dsn
                )
            )

        yield _Named(make, f"more databases for {cdc_scenario_name}")


@pytest.fixture
def pg_capture_factory(
    cdc_stack: Stack,
    pg_database: PgDatabase,
    pg_database_factory: Callable[[str], PgDatabase],
    cdc_scenario_name: str,
    tmp_path: Path,
) -> Iterator[CaptureFactory]:
    """Make capture approaches; teardown closes them and fails if anything is left behind."""
    factory = CaptureFactory(cdc_stack, pg_database, cdc_scenario_name, tmp_path)
    yield factory
    factory.close_all()


@pytest.fixture
def logical_decoding_factory(
    pg_database: PgDatabase, cdc_scenario_name: str
) -> Iterator[Callable[..., LogicalDecodingConsumer]]:
    """Make pgoutput consumers on this test's database (``make(tables, slot=None)``); each
    streams as the replication role and gets its own slot and publication (made by the
    admin), dropped after the test."""
    made: list[LogicalDecodingConsumer] = []

    def make(
        tables: list[str], *, slot: str | None = None, **kwargs: Any
    ) -> LogicalDecodingConsumer:
        name = slot or slot_name(cdc_scenario_name, len(made))
        consumer = LogicalDecodingConsumer(
            pg_database.replication_dsn,
            slot=name,
            publication=publication_name(name),
            tables=tables,
            admin_dsn=pg_database.dsn,
            **kwargs,
        )
        made.append(consumer)
        return consumer

    yield _Named(make, f"pgoutput consumers on {pg_database.name}")
    errors = []
    for consumer in reversed(made):  # newest first: a later consumer may hold an earlier's slot
        try:
            consumer.close()
        except Exception as exc:
            errors.append(f"{consumer!r}: {exc!r}")
    if errors:
        raise LeftoverObjects("could not drop: " + "; ".join(errors))


@pytest.fixture(scope="session")
def pg_approach_outcomes() -> ApproachOutcomes:
    """What each rule scenario observed per approach in this session (for the comparison)."""
    return ApproachOutcomes()
