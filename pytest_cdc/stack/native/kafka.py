"""A single-node Kafka broker in KRaft combined mode, and a Kafka Connect distributed worker."""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path

from pytest_cdc.process import ServiceProcess
from pytest_cdc.stack.jmx import agent_option
from pytest_cdc.stack.native.runtime import NativeRuntime
from pytest_cdc.stack.probes import HttpProbe, KafkaProbe

LOG4J_CONFIG = Path(__file__).with_name("log4j2.properties")
JAVA_EXIT_ON_SIGTERM = 143
READY_LINE = b"Kafka Server started"
JUL_TO_LOG4J = "org.apache.logging.log4j.jul.LogManager"
"""java.util.logging through log4j2 too (log4j-jul): the JMX exporter and the binlog client
log with it, and every log line must be JSON."""


def write_properties(path: Path, props: dict[str, object]) -> Path:
    """Write a Java .properties file."""
    path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
    return path


def new_cluster_id() -> str:
    """URL-safe base64 of 16 random bytes, unpadded, not starting with '-'."""
    raw = bytearray(os.urandom(16))
    raw[0] &= 0x7F  # keeps the first base64 character out of '-' and '_'
    return base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")


def _java(
    runtime: NativeRuntime,
    component: str,
    heap: str,
    main: list[str],
    *,
    metrics_port: int | None = None,
) -> list[str]:
    """The JVM command of ``component`` (kafka or connect): its classpath, JSON-lines logging
    tagged with the component and, given ``metrics_port``, the JMX exporter on 127.0.0.1."""
    classpath = runtime.broker_classpath if component == "kafka" else runtime.connect_classpath
    agent = (
        [] if metrics_port is None else [agent_option(runtime.jmx_agent, component, metrics_port)]
    )
    return [
        str(runtime.java),
        f"-Xmx{heap}",
        "-XX:+UseSerialGC",
        # C1 only: on a 2-core machine C2's compiler threads take the CPU the pipeline
        # needs for its first minutes (the first 10,000-operation workload of a fresh stack
        # read p95 4.8 s of lag with C2, 1.2 s without; later ones 0.9 s and 0.6 s)
        "-XX:TieredStopAtLevel=1",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
        f"-Djava.util.logging.manager={JUL_TO_LOG4J}",
        f"-Dcdc.component={component}",
        *agent,
        "-cp",
        classpath,
        *main,
    ]


def kafka_service(
    runtime: NativeRuntime,
    workdir: Path,
    port: int,
    controller_port: int,
    *,
    timeout: float,
    metrics_port: int | None = None,
) -> ServiceProcess:
    """The broker process (storage formatted on first use); `start()` it.

    ``metrics_port``: the JMX exporter answers ``http://127.0.0.1:PORT/metrics``.
    """
    logdir = workdir / "kafka-data"
    config = write_properties(
        workdir / "server.properties",
        {
            "process.roles": "broker,controller",
            "node.id": 1,
            "controller.quorum.bootstrap.servers": f"127.0.0.1:{controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port},"
            f"CONTROLLER://127.0.0.1:{controller_port}",
            "inter.broker.listener.name": "PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": logdir,
            "num.partitions": 1,
            "auto.create.topics.enable": "true",
            "offsets.topic.replication.factor": 1,
            "offsets.topic.num.partitions": 5,
            "transaction.state.log.replication.factor": 1,
            "transaction.state.log.min.isr": 1,
            "share.coordinator.state.topic.replication.factor": 1,
            "share.coordinator.state.topic.min.isr": 1,
            "group.initial.rebalance.delay.ms": 0,
            "log.flush.interval.messages": 9223372036854775807,
        },
    )
    if not logdir.exists():
        _format_storage(runtime, workdir, config)
    bootstrap = f"127.0.0.1:{port}"
    answers = KafkaProbe(bootstrap)

    def probe(service: ServiceProcess) -> str | None:
        if READY_LINE not in service.log_since_start():
            return f"no {READY_LINE.decode()!r} line in the log yet"
        return answers.check()

    return ServiceProcess(
        "kafka",
        _java(runtime, "kafka", "768m", ["kafka.Kafka", str(config)], metrics_port=metrics_port),
        log_path=workdir / "logs" / "kafka.log",
        probe=probe,
        awaited=f"the broker to log {READY_LINE.decode()!r}, then {answers.awaited}",
        timeout=timeout,
        expected_returncode=JAVA_EXIT_ON_SIGTERM,
        hint="the broker needs Java 17+ and free ports; see its log.",
    )


def _format_storage(runtime: NativeRuntime, workdir: Path, config: Path) -> None:
    cmd = _java(
        runtime,
        "kafka",
        "256m",
        [
            "kafka.tools.StorageTool",
            "format",
            "--standalone",
            "-t",
            new_cluster_id(),
            "-c",
            str(config),
        ],
    )
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"kafka storage format failed:\n{result.stdout}\n{result.stderr}")
    logs = workdir / "logs"
    logs.mkdir(exist_ok=True)
    (logs / "kafka-format.log").write_text(result.stdout + result.stderr)


def connect_service(
    runtime: NativeRuntime,
    workdir: Path,
    port: int,
    bootstrap: str,
    *,
    timeout: float,
    metrics_port: int | None = None,
) -> ServiceProcess:
    """The Connect distributed worker with Debezium on plugin.path; `start()` it.

    ``metrics_port``: the JMX exporter (Debezium and Connect metrics) answers
    ``http://127.0.0.1:PORT/metrics``.
    """
    config = write_properties(
        workdir / "connect.properties",
        {
            "bootstrap.servers": bootstrap,
            "group.id": "cdc-spec-connect",
            "config.storage.topic": "_connect_configs",
            "offset.storage.topic": "_connect_offsets",
            "status.storage.topic": "_connect_status",
            "config.storage.replication.factor": 1,
            "offset.storage.replication.factor": 1,
            "status.storage.replication.factor": 1,
            "offset.storage.partitions": 1,
            "status.storage.partitions": 1,
            "key.converter": "org.apache.kafka.connect.json.JsonConverter",
            "value.converter": "org.apache.kafka.connect.json.JsonConverter",
            "key.converter.schemas.enable": "false",
            "value.converter.schemas.enable": "false",
            "listeners": f"http://127.0.0.1:{port}",
            "rest.advertised.host.name": "127.0.0.1",
            "rest.advertised.port": port,
            "plugin.path": runtime.plugin_path,
            "plugin.discovery": "service_load",
            "offset.flush.interval.ms": 1000,
            "scheduled.rebalance.max.delay.ms": 1000,
            "task.shutdown.graceful.timeout.ms": 5000,
        },
    )
    ready = HttpProbe(f"http://127.0.0.1:{port}/connectors")

    return ServiceProcess(
        "connect",
        _java(
            runtime,
            "connect",
            "1g",
            ["org.apache.kafka.connect.cli.ConnectDistributed", str(config)],
            metrics_port=metrics_port,
        ),
        log_path=workdir / "logs" / "connect.log",
        probe=lambda _: ready.check(),
        awaited=ready.awaited,
        timeout=timeout,
        expected_returncode=JAVA_EXIT_ON_SIGTERM,
        hint="Connect needs the broker up and the Debezium plugins in place (`make setup`).",
    )
