"""One pipeline's series in Prometheus: a Debezium connector, its slot, a sink worker's group.

:class:`PipelineSeries` names the series of one pipeline by their labels (the connector's
topic prefix is Debezium's ``server``; the slot; the sink's consumer group and its instance)
and reads them from Prometheus, over a time window or now. The metric names are those of the
JMX exporter rules (pytest_cdc/stack/jmx), the collector and the sink worker.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdc_support.observability.prometheus import PrometheusClient, Sample, Series

STEP_SECONDS = 1.0
"""Range queries ask for one point per scrape."""


@dataclass(frozen=True)
class Window:
    """A span of unix time (a workload's run), with a margin after it for the last scrapes."""

    start: float
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class PipelineSeries:
    """The PromQL of one pipeline's key series."""

    server: str
    """The connector's topic prefix (Debezium's ``server`` MBean key)."""
    group: str
    """The sink worker's consumer group."""
    instance: str
    """The sink worker's scrape instance (its name)."""
    slot: str = ""
    """The PostgreSQL replication slot, when the source is PostgreSQL."""

    @property
    def queries(self) -> dict[str, str]:
        """Title -> PromQL, the key panels of the dashboard narrowed to this pipeline."""
        queries = {
            "connector lag (ms behind source)": (
                f'debezium_streaming_milliseconds_behind_source{{server="{self.server}"}}'
            ),
            "events seen by operation": (
                f'debezium_streaming_events_seen_total{{server="{self.server}"}}'
            ),
            "sink consumer lag (records)": (
                f'sum by (group) (cdc_kafka_consumer_group_lag_messages{{group="{self.group}"}})'
            ),
            "sink commits": (
                f'cdc_sink_commit_latency_seconds_count{{instance="{self.instance}"}}'
            ),
        }
        if self.slot:
            queries["slot lag (bytes not confirmed)"] = (
                f'cdc_pg_slot_confirmed_lag_bytes{{slot="{self.slot}"}}'
            )
        return queries

    def over(self, client: PrometheusClient, window: Window) -> dict[str, list[Series]]:
        """Each key series over ``window``, one point per second."""
        return {
            title: client.query_range(promql, start=window.start, end=window.end, step=STEP_SECONDS)
            for title, promql in self.queries.items()
        }

    def consumer_lag(self, client: PrometheusClient) -> list[Sample]:
        """The sink group's lag now, summed over partitions."""
        return client.query(self.queries["sink consumer lag (records)"])

    def connector_lag(self, client: PrometheusClient) -> list[Sample]:
        """The connector's MilliSecondsBehindSource now."""
        return client.query(self.queries["connector lag (ms behind source)"])

    def events_by_op(self, client: PrometheusClient) -> dict[str, float]:
        """Streaming events the connector has seen, by op (create, update, delete)."""
        samples = client.query(self.queries["events seen by operation"])
        return {s.labels.get("op", "?"): s.value for s in samples}
