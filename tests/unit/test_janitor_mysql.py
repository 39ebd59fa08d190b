"""A MySQL database fixture on a stack without MySQL/MariaDB fails its test in one line."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest

from pytest_cdc.janitor import mysql_scenario_database


def test_a_stack_without_mysql_fails_in_one_line_naming_the_options() -> None:
    stack: Any = SimpleNamespace(
        endpoints=SimpleNamespace(mysql_dsn=None), info=SimpleNamespace(backend="external")
    )
    database = mysql_scenario_database(cast(Any, stack), "cdc_x_0_mysql_database")
    with pytest.raises(pytest.fail.Exception) as failed, database:
        pass
    message = str(failed.value)
    assert failed.value.pytrace is False  # no traceback: the message names the fix
    assert "\n" not in message
    assert message.startswith("the external stack has no MySQL/MariaDB server: ")
    assert "--cdc-mysql-dsn=mysql://USER:PASSWORD@HOST:PORT/" in message
    assert "`cdc-spec up` without --components" in message
