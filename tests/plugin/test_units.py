"""Small pure pieces of the plugin: names, tags, cluster ids."""

from __future__ import annotations

import base64
import re

import pytest

from pytest_cdc.janitor import MAX_IDENTIFIER, scenario_name
from pytest_cdc.report.labels import apply_tag
from pytest_cdc.stack.native.kafka import new_cluster_id


def test_scenario_names_are_unique_valid_identifiers() -> None:
    long_label = "A 1,000-operation mixed workload rebuilds to the source table, with p95 lag" * 3
    names = {scenario_name(long_label) for _ in range(50)}
    assert len(names) == 50
    for name in names:
        assert len(name) <= MAX_IDENTIFIER
        assert re.fullmatch(r"cdc_[a-z0-9_]+_[0-9a-f]{8}", name), name


def test_label_tags_become_allure_label_marks() -> None:
    def scenario() -> None: ...

    marked = apply_tag("epic:PostgreSQL_and_friends", scenario)
    mark = marked.pytestmark[0]
    assert mark.name == "allure_label"
    assert mark.args == ("PostgreSQL and friends",)
    assert mark.kwargs == {"label_type": "epic"}


@pytest.mark.parametrize("tag", ["slow", "debezium", "unknown:thing"])
def test_other_tags_are_left_to_pytest_bdd(tag: str) -> None:
    assert apply_tag(tag, lambda: None) is None


def test_cluster_ids_are_16_url_safe_bytes_not_starting_with_dash() -> None:
    for _ in range(200):
        cid = new_cluster_id()
        assert len(cid) == 22 and not cid.startswith(("-", "_"))
        assert len(base64.urlsafe_b64decode(cid + "==")) == 16
