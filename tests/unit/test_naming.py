"""One naming scheme for every connector: distinct per kind and index, valid slot names."""

from __future__ import annotations

import re

import pytest

from cdc_support.naming import (
    MAX_IDENTIFIER,
    connector_name,
    database_name,
    group_id,
    publication_name,
    scenario_name,
    slot_name,
)

SLOT_NAME = re.compile(r"[a-z0-9_]{1,63}")


def test_connectors_of_different_kinds_in_one_scenario_differ():
    scenario = scenario_name("test_both_factories")
    names = {connector_name(kind, scenario, 0) for kind in ("pg", "mariadb", "mysql")}
    names |= {connector_name("pg", scenario, i) for i in range(3)}
    assert len(names) == 5


def test_long_scenarios_keep_their_unique_id_and_fit_the_limits():
    label = "A 1,000-operation mixed workload rebuilds to the source table, with p95 lag" * 3
    first, second = scenario_name(label), scenario_name(label)
    for scenario in (first, second):
        for kind in ("pg", "mariadb"):
            for index in (0, 7, 123):
                name = connector_name(kind, scenario, index)
                assert SLOT_NAME.fullmatch(name), name
                assert len(publication_name(name)) <= MAX_IDENTIFIER
                assert name.endswith(f"{scenario[-8:]}_{index}"), name
                assert name.startswith(f"{kind}_cdc_a_1_000_operation")
    assert connector_name("pg", first, 0) != connector_name("pg", second, 0)


def test_short_names_are_readable():
    assert connector_name("pg", "cdc_snapshot_0a1b2c3d", 1) == "pg_cdc_snapshot_0a1b2c3d_1"
    assert publication_name("pg_cdc_snapshot_0a1b2c3d_1") == "pg_cdc_snapshot_0a1b2c3d_1_pub"


def test_bad_kind_and_too_long_publication_are_refused():
    with pytest.raises(ValueError, match="choose one of pg, mariadb, mysql"):
        connector_name("oracle", "cdc_x_0a1b2c3d", 0)
    with pytest.raises(ValueError, match="connector_name"):
        publication_name("x" * 60)


LONG = "a scenario whose name is far longer than any PostgreSQL identifier may be" * 2


def test_slots_of_long_scenarios_keep_their_id_and_their_publication_fits():
    first, second = scenario_name(LONG), scenario_name(LONG)
    slots = {slot_name(s, i) for s in (first, second) for i in range(3)}
    assert len(slots) == 6
    for slot in slots:
        assert SLOT_NAME.fullmatch(slot), slot
        assert len(publication_name(slot)) <= MAX_IDENTIFIER
    assert slot_name(first).endswith(first[-9:]) and slot_name(first, 2).endswith(first[-9:] + "_2")
    assert slot_name("cdc_short_1a2b3c4d") == "cdc_short_1a2b3c4d"


def test_more_databases_of_long_scenarios_stay_distinct_and_valid():
    first, second = scenario_name(LONG), scenario_name(LONG)
    names = {database_name(s, i, "the other database!") for s in (first, second) for i in (1, 2)}
    assert len(names) == 4
    for name in names:
        assert len(name) <= MAX_IDENTIFIER and SLOT_NAME.fullmatch(name), name
    assert database_name("cdc_x_1a2b3c4d", 1, "Other DB") == "cdc_x_1a2b3c4d_1_other_db"


def test_consumer_groups_are_fresh_and_readable():
    assert re.fullmatch(r"cdc-spec-raw-reader-[0-9a-f]{8}", group_id("raw reader"))
    assert group_id("reader") != group_id("reader")
