"""Functions that return fixtures, as ``pytest_postgresql.factories`` does.

The plugin's own ``cdc_stack``, ``pg_database`` and ``mysql_database`` are made by these; a
conftest makes more in a line each::

    from pytest_cdc import factories

    other_db = factories.pg_database(stack="cdc_stack")      # one more fresh database
    other_mysql = factories.mysql_database(stack="cdc_stack")

A database fixture names its database after the scenario and the fixture
(:func:`cdc_support.naming.database_name`), so two of them in one test never clash.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from cdc_support.naming import database_name
from pytest_cdc.janitor import MySqlDatabase, PgDatabase, mysql_scenario_database, scenario_database
from pytest_cdc.options import Setting
from pytest_cdc.stack import Stack
from pytest_cdc.state import get_state

__all__ = ["cdc_stack", "mysql_database", "pg_database"]


def cdc_stack(backend: str | None = None) -> Callable[..., Any]:
    """A session fixture: the running stack, started on first use.

    ``backend=None`` is the session's stack (``--cdc-backend``, env, ini; one per session,
    stopped at its end). A backend name (``"native"``, ``"docker"``, ...) starts a stack of
    its own through the same seam, stopped after the session's last test that used it.
    """

    def stack_fixture(request: pytest.FixtureRequest) -> Iterator[Stack]:
        """The running CDC stack (endpoints only), started once per session."""
        state = get_state(request.config)
        if backend is None:
            yield state.stack()
            return
        source = f"factories.cdc_stack(backend={backend!r})"
        with state.start(Setting(backend, source)) as stack:
            yield stack

    return pytest.fixture(scope="session")(stack_fixture)


def _database_name(request: pytest.FixtureRequest) -> str:
    """``<scenario>_0_<fixture name>``: the scenario's unique name, then which fixture."""
    scenario: str = request.getfixturevalue("cdc_scenario_name")
    return database_name(scenario, 0, request.fixturename or "database")


def pg_database(stack: str = "cdc_stack") -> Callable[..., Any]:
    """A test fixture: a fresh PostgreSQL database on the ``stack`` fixture's server; dropped
    (with its replication slots) after the test."""

    def database_fixture(request: pytest.FixtureRequest) -> Iterator[PgDatabase]:
        running: Stack = request.getfixturevalue(stack)
        cdc_dsn = running.endpoints.postgres_cdc_dsn
        name = _database_name(request)
        with scenario_database(running.postgres_dsn, name, cdc_dsn=cdc_dsn) as database:
            yield database

    database_fixture.__doc__ = (
        f"A fresh PostgreSQL database on {stack}'s server for this test; dropped (with its "
        "replication slots) afterwards."
    )
    return pytest.fixture(database_fixture)


def mysql_database(stack: str = "cdc_stack") -> Callable[..., Any]:
    """A test fixture: a fresh MySQL/MariaDB database on the ``stack`` fixture's server;
    dropped after the test."""

    def database_fixture(request: pytest.FixtureRequest) -> Iterator[MySqlDatabase]:
        running: Stack = request.getfixturevalue(stack)
        with mysql_scenario_database(running, _database_name(request)) as database:
            yield database

    database_fixture.__doc__ = (
        f"A fresh MySQL/MariaDB database on {stack}'s server for this test; dropped afterwards."
    )
    return pytest.fixture(database_fixture)
