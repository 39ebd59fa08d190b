"""The pieces the approaches steps use: footprint sentences, the story, the comparison."""

from __future__ import annotations

from collections import Counter

import pytest

from cdc_support.events import ChangeEvent
from cdc_support.postgres.approach_story import Story, events_for, expected_kinds
from cdc_support.postgres.comparison import Comparison
from cdc_support.postgres.measure import WorkloadRun
from cdc_support.postgres.single_row import SingleRowStory
from cdc_support.workload import Operation


def test_a_footprint_sentence_reads_as_kinds() -> None:
    assert expected_kinds("a table, 2 indexes, 3 triggers, a function") == Counter(
        {"table": 1, "index": 2, "trigger": 3, "function": 1}
    )
    assert expected_kinds("a publication, a replication slot, REPLICA IDENTITY FULL") == Counter(
        {"publication": 1, "replication slot": 1, "replica identity": 1}
    )


@pytest.mark.parametrize("text", ["a gizmo", "several tables"])
def test_a_footprint_sentence_names_known_kinds(text: str) -> None:
    with pytest.raises(AssertionError):
        expected_kinds(text)


def test_the_story_knows_its_next_key_and_shows_its_size() -> None:
    story = Story(operations=[Operation("insert", "customers", (k,), {}, 0.0) for k in (1, 3)])
    assert story.next_key() == 4
    assert repr(story) == "2 writes"


def _event(key: int, op: str = "c") -> ChangeEvent:
    return ChangeEvent(op, (key,), None, {"id": key}, {}, 1.0, 1.0)  # type: ignore[arg-type]


def test_events_for_keeps_one_key_in_order() -> None:
    events = [_event(1), _event(2), _event(1, "u")]
    assert [e.op for e in events_for(events, (1,))] == ["c", "u"]


def test_a_comparison_finds_a_run_by_approach() -> None:
    runs = [WorkloadRun(name, [], [], 0, 0, 1.0, 1.0) for name in ("none (baseline)", "Debezium")]
    comparison = Comparison(runs, {})
    assert comparison.run("Debezium") is runs[1]
    assert repr(comparison) == "Comparison(none (baseline), Debezium)"


def test_a_single_row_story_has_a_short_repr() -> None:
    story = SingleRowStory((1,), {"id": 1}, None, ("c", "d"))
    assert repr(story) == "wrote c, d for key (1,)"
