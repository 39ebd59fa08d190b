"""The one per-key loss/duplicate computation, over any kind of item."""

from __future__ import annotations

from cdc_support.checks.delivery import compare_per_key


def test_per_key_lost_extra_and_reordered_items() -> None:
    expected = {(1,): [(1, "c"), (2, "u")], (2,): [(1, "c"), (3, "d")], (3,): ["c", "u"]}
    delivered = {(1,): [(1, "c")], (2,): [(1, "c"), (1, "c"), (3, "d")], (3,): ["u", "c"]}
    diff = compare_per_key(expected, delivered)
    assert diff.lost == {(1,): [(2, "u")]}
    assert diff.extra == {(2,): [(1, "c")]}
    assert diff.reordered == {(3,): (["c", "u"], ["u", "c"])}


def test_a_key_never_expected_is_extra_and_one_never_delivered_is_lost() -> None:
    diff = compare_per_key({(1,): ["c"]}, {(9,): ["c", "d"]})
    assert diff.lost == {(1,): ["c"]} and diff.extra == {(9,): ["c", "d"]}
    assert compare_per_key({(1,): ["c"]}, {(1,): ["c"]}) == compare_per_key({}, {})
