"""The JMX exporter's rules files and javaagent option, and finding the agent jar.

The rules themselves are checked against real MBeans in tests/integration/test_jmx_metrics.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_cdc.errors import RuntimeMissing
from pytest_cdc.stack.jmx import agent_option, rules_file
from pytest_cdc.stack.native.runtime import find_jmx_agent


def test_the_agent_option_binds_loopback_and_names_the_components_rules() -> None:
    jar = Path("/opt/agents/jmx_prometheus_javaagent-1.0.1.jar")
    option = agent_option(jar, "connect", 9404)
    assert option == f"-javaagent:{jar}=127.0.0.1:9404:{rules_file('connect')}"
    assert rules_file("connect").is_file() and rules_file("kafka").is_file()


def test_an_unknown_component_has_no_rules() -> None:
    with pytest.raises(ValueError, match=r"kafka.*connect"):
        rules_file("postgres")


def test_the_agent_jar_is_found_in_dist_agents(tmp_path: Path) -> None:
    (tmp_path / "agents").mkdir()
    jar = tmp_path / "agents" / "jmx_prometheus_javaagent-1.0.1.jar"
    jar.write_bytes(b"")
    assert find_jmx_agent(tmp_path) == jar


def test_a_missing_agent_jar_names_make_setup(tmp_path: Path) -> None:
    with pytest.raises(RuntimeMissing, match=r"jmx_prometheus_javaagent.*`make setup`"):
        find_jmx_agent(tmp_path)
