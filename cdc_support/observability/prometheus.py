"""A small client of Prometheus' HTTP API: instant and range queries, scrape targets, waiting.

Results come back as plain data (labels and floats), so steps and checks never parse the
API's JSON themselves; an error answer raises PrometheusError with Prometheus' own message.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

from cdc_support.waiting import wait_until

TIMEOUT = 5.0


class PrometheusError(RuntimeError):
    """Prometheus refused a query or could not be reached; the message says which."""


@dataclass(frozen=True)
class Sample:
    """One series of an instant query: its labels and its value at the query time."""

    labels: dict[str, str]
    value: float


@dataclass(frozen=True)
class Series:
    """One series of a range query: its labels and its (unix time, value) points."""

    labels: dict[str, str]
    points: list[tuple[float, float]]

    @property
    def values(self) -> list[float]:
        """The values alone, in time order."""
        return [v for _, v in self.points]


@dataclass(frozen=True)
class Target:
    """One scrape target as Prometheus sees it."""

    job: str
    instance: str
    health: str
    last_error: str


class PrometheusClient:
    """Queries one Prometheus server (``url`` like ``http://127.0.0.1:9090``)."""

    def __init__(self, url: str, *, timeout: float = TIMEOUT) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"Prometheus at {self.url}"

    def _get(self, path: str, params: dict[str, Any]) -> Any:
        try:
            response = requests.get(f"{self.url}{path}", params=params, timeout=self.timeout)
        except requests.RequestException as exc:
            raise PrometheusError(f"Prometheus at {self.url} did not answer: {exc}") from None
        try:
            body = response.json()
        except ValueError:
            raise PrometheusError(
                f"Prometheus at {self.url} answered HTTP {response.status_code} without JSON"
            ) from None
        if body.get("status") != "success":
            raise PrometheusError(f"Prometheus refused {params}: {body.get('error', body)}")
        return body["data"]

    def query(self, promql: str, *, at: float | None = None) -> list[Sample]:
        """The series of ``promql`` now (or at unix time ``at``)."""
        params: dict[str, Any] = {"query": promql}
        if at is not None:
            params["time"] = at
        data = self._get("/api/v1/query", params)
        if data["resultType"] == "scalar":
            return [Sample({}, float(data["result"][1]))]
        return [Sample(dict(r["metric"]), float(r["value"][1])) for r in data["result"]]

    def query_range(self, promql: str, *, start: float, end: float, step: float) -> list[Series]:
        """The series of ``promql`` from ``start`` to ``end`` (unix times), every ``step`` s."""
        params = {"query": promql, "start": start, "end": end, "step": step}
        data = self._get("/api/v1/query_range", params)
        return [
            Series(
                dict(r["metric"]),
                [(float(t), float(v)) for t, v in r["values"] if not math.isnan(float(v))],
            )
            for r in data["result"]
        ]

    def targets(self) -> list[Target]:
        """The active scrape targets and whether their last scrape worked."""
        data = self._get("/api/v1/targets", {"state": "active"})
        return [
            Target(
                t["labels"].get("job", ""),
                t["labels"].get("instance", ""),
                t["health"],
                t.get("lastError", ""),
            )
            for t in data["activeTargets"]
        ]

    def wait_for(
        self,
        promql: str,
        *,
        done: Callable[[list[Sample]], bool] = bool,
        timeout: float = 30.0,
        expected: str = "",
    ) -> list[Sample]:
        """Poll ``promql`` until ``done(samples)``; WaitTimeout says what was expected and seen."""
        return wait_until(
            lambda: self.query(promql),
            done=done,
            timeout=timeout,
            interval=0.5,
            expected=expected or f"a series for {promql}",
            describe=describe_samples,
        )


def describe_samples(samples: list[Sample]) -> str:
    """One line: how many series, and the first few with their values."""
    if not samples:
        return "no series"
    shown = "; ".join(f"{s.labels} = {s.value:g}" for s in samples[:5])
    more = f" (+{len(samples) - 5} more)" if len(samples) > 5 else ""
    return f"{len(samples)} series: {shown}{more}"
