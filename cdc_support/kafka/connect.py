"""A small Kafka Connect REST client: register, stop, resume and delete connectors; status."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests

from cdc_support.kafka.connector_config import heartbeat_topic
from cdc_support.kafka.topics import read_json_values
from cdc_support.waiting import wait_until


class ConnectError(RuntimeError):
    """Connect answered with an error; the message carries its explanation."""


class ConnectorNotFound(ConnectError):
    """HTTP 404: the connector is unknown (or its status is not written yet)."""


class ConnectorConfigError(ConnectError):
    """A connector config Connect (or its source database) refuses; one line naming the fix."""


@dataclass(frozen=True)
class ConnectorStatus:
    """Connector state and its tasks' states, with the first task trace if one failed."""

    name: str
    state: str
    tasks: tuple[str, ...]
    trace: str | None = None

    @property
    def running(self) -> bool:
        """Connector and at least one task RUNNING, no task in another state."""
        return self.state == "RUNNING" and bool(self.tasks) and set(self.tasks) == {"RUNNING"}

    @property
    def failed(self) -> bool:
        """Connector or a task FAILED."""
        return self.state == "FAILED" or "FAILED" in self.tasks

    def __str__(self) -> str:
        tasks = ",".join(self.tasks) or "no tasks"
        return f"connector {self.state}, tasks [{tasks}]"


class ConnectClient:
    """Talks to one Connect worker's REST API."""

    def __init__(self, url: str, *, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._http = requests.Session()

    def __repr__(self) -> str:
        return f"ConnectClient({self.url})"

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._http.request(method, self.url + path, timeout=self.timeout, **kwargs)
        if response.status_code >= 400:
            try:
                message = response.json().get("message", response.text)
            except ValueError:
                message = response.text
            error = ConnectorNotFound if response.status_code == 404 else ConnectError
            raise error(f"{method} {path} -> HTTP {response.status_code}: {message}")
        return response.json() if response.content else None

    def plugins(self) -> list[dict[str, str]]:
        """Installed connector plugins (class, type, version)."""
        return self._call("GET", "/connector-plugins")

    def version(self) -> str:
        """The worker's Kafka version."""
        return self._call("GET", "/")["version"]

    def connectors(self) -> list[str]:
        """Names of the registered connectors."""
        return self._call("GET", "/connectors")

    def validate(self, name: str, config: dict[str, Any]) -> dict[str, list[str]]:
        """Ask the connector plugin to check connector ``name``'s ``config`` (``PUT
        /connector-plugins/{class}/config/validate``; Debezium also tries the database login).

        Returns each failing key with its error messages (empty when the config is valid).
        """
        plugin = config.get("connector.class")
        if not plugin:
            return {"connector.class": ["missing: name the connector plugin's class"]}
        answer = self._call(
            "PUT", f"/connector-plugins/{plugin}/config/validate", json={"name": name, **config}
        )
        values = [item.get("value") or {} for item in answer.get("configs") or []]
        return {v["name"]: list(v["errors"]) for v in values if v.get("errors")}

    def create(self, name: str, config: dict[str, Any]) -> dict[str, Any]:
        """Register (or reconfigure) a connector."""
        return self._call("PUT", f"/connectors/{name}/config", json=config)

    def config(self, name: str) -> dict[str, Any]:
        """The connector's stored configuration."""
        return self._call("GET", f"/connectors/{name}/config")

    def status(self, name: str) -> ConnectorStatus:
        """Current state of the connector and its tasks."""
        raw = self._call("GET", f"/connectors/{name}/status")
        tasks = raw.get("tasks", [])
        trace = next((t.get("trace") for t in tasks if t.get("trace")), None)
        trace = trace or raw["connector"].get("trace")
        return ConnectorStatus(
            name=name,
            state=raw["connector"]["state"],
            tasks=tuple(t["state"] for t in tasks),
            trace=trace,
        )

    def delete(self, name: str) -> None:
        """Remove a connector (its offsets stay in the offsets topic)."""
        self._call("DELETE", f"/connectors/{name}")

    def stop(self, name: str) -> None:
        """Stop the connector and its tasks (state STOPPED); their offsets are committed."""
        self._call("PUT", f"/connectors/{name}/stop")

    def resume(self, name: str) -> None:
        """Start a STOPPED (or PAUSED) connector again; its task resumes from its offsets."""
        self._call("PUT", f"/connectors/{name}/resume")

    def offsets(self, name: str) -> list[dict[str, Any]]:
        """The committed source offsets: ``[{"partition": {...}, "offset": {...}}]``."""
        return self._call("GET", f"/connectors/{name}/offsets")["offsets"]

    def wait_stopped(self, name: str, *, timeout: float = 60.0) -> ConnectorStatus:
        """Poll until the connector is STOPPED (no task left)."""
        return wait_until(
            lambda: self.status(name),
            done=lambda s: s.state == "STOPPED" and not s.tasks,
            timeout=timeout,
            expected=f"connector {name} STOPPED with no tasks",
            describe=str,
        )

    def wait_running(self, name: str, *, timeout: float = 60.0) -> ConnectorStatus:
        """Poll until connector and tasks are RUNNING; fail fast with the trace if one FAILED."""

        def probe() -> ConnectorStatus:
            status = self.status(name)
            if status.failed:
                raise ConnectError(f"connector {name} failed: {status}\n{status.trace or ''}")
            return status

        return wait_until(
            probe,
            done=lambda s: s.running,
            timeout=timeout,
            expected=f"connector {name} and its task RUNNING",
            describe=str,
            ignore=(requests.RequestException, ConnectorNotFound),
        )

    def wait_streaming(
        self, name: str, topic_prefix: str, bootstrap: str, *, timeout: float = 60.0
    ) -> None:
        """Wait for a Debezium connector's first heartbeat: its snapshot is done, it streams.

        A change committed before that may be folded into the snapshot (or, if the row is
        gone again by then, never seen); write what must arrive as a change only after this.
        Needs ``heartbeat.interval.ms`` in the connector's config. Fails fast if it FAILED.
        """

        def streaming(heartbeats: list[dict]) -> bool:
            if heartbeats:
                return True
            status = self.status(name)
            if status.failed:
                raise ConnectError(f"connector {name} failed: {status}\n{status.trace or ''}")
            return False

        read_json_values(
            bootstrap,
            heartbeat_topic(topic_prefix),
            done=streaming,
            timeout=timeout,
            expected=f"a heartbeat of {name} (Debezium sends none until its snapshot is done)",
        )

    def wait_gone(self, name: str, *, timeout: float = 30.0) -> None:
        """Poll until the connector is no longer listed."""
        wait_until(
            self.connectors,
            done=lambda names: name not in names,
            timeout=timeout,
            expected=f"connector {name} deleted",
            describe=lambda names: f"connectors {names}",
        )
