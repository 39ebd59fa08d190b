"""``cdc_fixtures``: the fixtures a step picks by a Gherkin value, fetched only when asked.

A step that needs ``pg_conn`` for "PostgreSQL" but ``mysql_conn`` for "MariaDB" cannot name
both (each makes a database). It takes ``cdc_fixtures`` rather than pytest's ``request``: the
report shows a step's arguments by their repr, and ``<FixtureRequest for <Function …>>`` says
nothing to its reader.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest


class ScenarioFixtures:
    """This scenario's fixtures by name (``get``), and its teardown (``at_teardown``)."""

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self._request = request

    def __repr__(self) -> str:
        return f"ScenarioFixtures({self._request.node.name})"

    def get(self, name: str) -> Any:
        """The value of fixture ``name`` (set up now if the scenario has not used it yet)."""
        return self._request.getfixturevalue(name)

    def at_teardown(self, finalizer: Callable[[], object]) -> None:
        """Call ``finalizer`` when the scenario ends, before the fixtures it used are torn down."""
        self._request.addfinalizer(finalizer)


@pytest.fixture
def cdc_fixtures(request: pytest.FixtureRequest) -> ScenarioFixtures:
    """This scenario's fixtures, fetched by name when a step knows which it needs."""
    return ScenarioFixtures(request)
