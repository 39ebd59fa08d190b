"""Readiness probes need only endpoints: an address answers or says what it saw instead."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator

import pytest

from cdc_support.endpoints import Endpoints
from cdc_support.waiting import WaitTimeout
from pytest_cdc.stack import component_names
from pytest_cdc.stack.probes import (
    HttpProbe,
    KafkaProbe,
    SqlProbe,
    TcpProbe,
    endpoint_probes,
    wait_ready,
)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def http_url() -> Iterator[str]:
    """A local HTTP server: 200 on /connectors, 404 elsewhere."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/connectors" else 404)
            self.end_headers()
            self.wfile.write(b"[]")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def test_tcp_and_http_probes_answer_none_when_ready(http_url: str) -> None:
    port = int(http_url.rsplit(":", 1)[1])
    assert TcpProbe("127.0.0.1", port).check() is None
    assert HttpProbe(f"{http_url}/connectors").check() is None
    assert HttpProbe(f"{http_url}/health").check() == "HTTP 404"


def test_probes_on_a_closed_port_say_what_they_saw_without_the_password() -> None:
    port = _closed_port()
    probes = [
        TcpProbe("127.0.0.1", port),
        HttpProbe(f"http://127.0.0.1:{port}/connectors"),
        SqlProbe(f"postgresql://postgres:s3cr3t@127.0.0.1:{port}/postgres"),
        SqlProbe(f"mysql://root:s3cr3t@127.0.0.1:{port}/"),
        KafkaProbe(f"127.0.0.1:{port}"),
    ]
    for probe in probes:
        seen = probe.check()
        assert seen and "\n" not in seen, (probe, seen)
        assert "s3cr3t" not in seen + probe.awaited, (probe, seen)
    assert "postgres:***@" in probes[2].awaited


def test_a_stack_has_one_probe_per_component() -> None:
    ep = Endpoints(
        postgres_dsn="postgresql://postgres:x@127.0.0.1:5432/postgres",
        kafka_bootstrap="127.0.0.1:9092",
        connect_url="http://127.0.0.1:8083/",
        mysql_dsn="mysql://root:y@127.0.0.1:3306/",
    )
    probes = endpoint_probes(ep)
    assert tuple(probes) == component_names(ep) == ("postgres", "mariadb", "kafka", "connect")
    assert probes["connect"] == HttpProbe("http://127.0.0.1:8083/connectors")
    without_mysql = Endpoints(ep.postgres_dsn, ep.kafka_bootstrap, ep.connect_url)
    assert tuple(endpoint_probes(without_mysql)) == ("postgres", "kafka", "connect")


def test_waiting_names_each_component_still_not_ready(http_url: str) -> None:
    port = _closed_port()
    probes = {"connect": HttpProbe(f"{http_url}/connectors"), "kafka": TcpProbe("127.0.0.1", port)}
    with pytest.raises(WaitTimeout) as timeout:
        wait_ready(probes, timeout=0.5, interval=0.1)
    message = str(timeout.value)
    assert f"kafka: a TCP connection to 127.0.0.1:{port}" in message
    assert "last seen: kafka: ConnectionRefusedError" in message
    assert "connect: HTTP" not in message.split("last seen:")[1]  # it answered
    wait_ready({"connect": probes["connect"]}, timeout=1)
