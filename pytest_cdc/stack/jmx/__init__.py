"""Prometheus JMX exporter rules for the Kafka broker (kafka.yaml) and the Connect worker
(connect.yaml): the metric names of the issue-15 contract. Both backends give them to the
javaagent (runtime/dist/agents/jmx_prometheus_javaagent-*.jar):
``-javaagent:JAR=HOST:PORT:RULES``.
"""

from __future__ import annotations

from pathlib import Path

RULES_DIR = Path(__file__).parent
COMPONENTS = ("kafka", "connect")


def rules_file(component: str) -> Path:
    """The rules YAML of ``component`` (kafka or connect)."""
    if component not in COMPONENTS:
        raise ValueError(f"no JMX exporter rules for {component!r}: use one of {COMPONENTS}")
    return RULES_DIR / f"{component}.yaml"


def agent_option(jar: Path, component: str, port: int, host: str = "127.0.0.1") -> str:
    """The JVM option that starts the exporter on ``host:port`` with ``component``'s rules."""
    return f"-javaagent:{jar}={host}:{port}:{rules_file(component)}"
