import datetime as dt
import json
import uuid
from decimal import Decimal

import pytest

from cdc_support.checks.integrity import (
    KeyDiff,
    canonical_row,
    canonical_value,
    compare_multisets,
    compare_tables,
    decimal_string,
    diff_by_key,
    rows_by_identity,
    table_checksum,
    utc_timestamp,
)
from cdc_support.checks.replay import KeylessReplayError, check_commit_order, rebuild_from_events
from cdc_support.events import ChangeEvent, Tombstone

CEST = dt.timezone(dt.timedelta(hours=2))


# ------------------------------------------------------------------ canonical form


def test_canonical_row_is_sorted_compact_json():
    assert canonical_row({"b": 1, "a": None, "c": True}) == '{"a":null,"b":1,"c":true}'


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("12.50"), "12.5"),
        (Decimal("12.5"), "12.5"),
        (Decimal("1E+2"), "100"),
        (Decimal("-0.00"), "0"),
        (Decimal("0.000001"), "0.000001"),
        (Decimal("NaN"), "NaN"),
        (12.0, "12.0"),
        ("12.50", "12.50"),  # strings are never parsed by default
        ("007", "007"),
        (dt.datetime(2024, 1, 1, 12, 0, tzinfo=CEST), "2024-01-01T10:00:00.000000Z"),
        (dt.datetime(2024, 1, 1, 12, 0), "2024-01-01T12:00:00.000000"),
        (dt.date(2024, 2, 29), "2024-02-29"),
        (dt.time(8, 30), "08:30:00.000000"),
        (b"\x00\xff", "00ff"),
        (memoryview(b"\x01"), "01"),
        (uuid.UUID(int=1), "00000000-0000-0000-0000-000000000001"),
        (dt.timedelta(seconds=1.5), "1.5"),
        ({"b": Decimal("1.0")}, {"b": "1"}),
        ([Decimal("2.00"), None], ["2", None]),
    ],
)
def test_canonical_value(value, expected):
    assert canonical_value(value) == expected


def test_decimal_objects_canonicalise_equal_regardless_of_scale():
    assert canonical_row({"p": Decimal("12.50")}) == canonical_row({"p": Decimal("12.5")})
    assert canonical_row({"p": Decimal("12.50")}) == canonical_row({"p": "12.5"})


def test_numeric_strings_need_a_normalizer():
    assert canonical_row({"p": Decimal("12.50")}) != canonical_row({"p": "12.50"})
    norm = {"p": decimal_string}
    assert canonical_row({"p": Decimal("12.50")}, normalizers=norm) == canonical_row(
        {"p": "12.50"}, normalizers=norm
    )


def test_normalizers_only_touch_their_column():
    row = {"p": "12.50", "sku": "007"}
    assert json.loads(canonical_row(row, normalizers={"p": decimal_string})) == {
        "p": "12.5",
        "sku": "007",
    }


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("12.50"), "12.5"),
        ("12.50", "12.5"),
        (" 12.5 ", "12.5"),
        (12, "12"),
        (1.25, "1.25"),
        ("abc", "abc"),
        (None, None),
    ],
)
def test_decimal_string(value, expected):
    assert decimal_string(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-01-01T10:00:00.123456Z", "2024-01-01T10:00:00.123456Z"),
        ("2024-01-01T10:00:00Z", "2024-01-01T10:00:00.000000Z"),
        ("2024-01-01T12:00:00.5+02:00", "2024-01-01T10:00:00.500000Z"),
        ("2024-01-01 12:00:00.123456789+02", "2024-01-01T10:00:00.123456Z"),
        (dt.datetime(2024, 1, 1, 12, tzinfo=CEST), "2024-01-01T10:00:00.000000Z"),
        ("2024-01-01", "2024-01-01"),  # date-only strings are left alone
        ("not a time", "not a time"),
        (5, 5),
    ],
)
def test_utc_timestamp(value, expected):
    assert utc_timestamp(value) == expected


# ------------------------------------------------------------------ checksums


def test_checksum_is_order_independent():
    rows = [{"id": i, "v": f"x{i}"} for i in range(50)]
    assert table_checksum(rows) == table_checksum(list(reversed(rows)))
    assert len(table_checksum(rows)) == 32


def test_checksum_counts_duplicates():
    a = {"id": 1}
    b = {"id": 2}
    assert table_checksum([a, a]) != table_checksum([])
    assert table_checksum([a, a, b]) != table_checksum([b])
    assert table_checksum([]) == "0" * 32


def test_checksum_detects_a_changed_value():
    assert table_checksum([{"id": 1, "v": "a"}]) != table_checksum([{"id": 1, "v": "b"}])


def test_checksum_with_normalizers():
    pg = [{"id": 1, "price": Decimal("12.50"), "at": dt.datetime(2024, 1, 1, tzinfo=dt.UTC)}]
    dbz = [{"id": 1, "price": "12.50", "at": "2024-01-01T00:00:00Z"}]
    norm = {"price": decimal_string, "at": utc_timestamp}
    assert table_checksum(pg) != table_checksum(dbz)
    assert table_checksum(pg, normalizers=norm) == table_checksum(dbz, normalizers=norm)


# ------------------------------------------------------------------ diffs


def _tables():
    expected = {
        (1,): {"id": 1, "name": "Ann", "price": Decimal("1.50")},
        (2,): {"id": 2, "name": "Bob", "price": Decimal("2.00")},
        (3,): {"id": 3, "name": "Cy", "price": Decimal("3.00")},
    }
    actual = {
        (1,): {"id": 1, "name": "Ann", "price": "1.50"},
        (2,): {"id": 2, "name": "Bobby", "price": "2.00"},
        (4,): {"id": 4, "name": "<Dee>", "price": "4.00"},
    }
    return expected, actual


def test_diff_by_key():
    expected, actual = _tables()
    diff = diff_by_key(expected, actual, normalizers={"price": decimal_string})
    assert list(diff.missing) == [(3,)]
    assert list(diff.extra) == [(4,)]
    assert list(diff.changed) == [(2,)]
    assert diff.changed[(2,)] == (expected[(2,)], actual[(2,)])
    assert diff.changed_columns[(2,)] == ("name",)
    assert not diff.is_empty


def test_diff_without_normalizers_sees_type_differences():
    expected, actual = _tables()
    diff = diff_by_key(expected, actual)
    assert set(diff.changed) == {(1,), (2,)}
    assert diff.changed_columns[(2,)] == ("name", "price")


def test_diff_matches_keys_by_canonical_form():
    diff = diff_by_key({(Decimal("1.0"),): {"v": 1}}, {(Decimal("1"),): {"v": 1}})
    assert diff.is_empty
    diff = diff_by_key({(1,): {"v": 1}}, {("1",): {"v": 1}})
    assert list(diff.missing) == [(1,)]
    assert list(diff.extra) == [("1",)]


def test_diff_reports_added_and_removed_columns():
    diff = diff_by_key({(1,): {"a": 1}}, {(1,): {"a": 1, "b": None}})
    assert diff.changed_columns[(1,)] == ("b",)


def test_empty_diff():
    diff = diff_by_key({(1,): {"a": 1}}, {(1,): {"a": 1}})
    assert diff.is_empty
    assert diff.summary() == "no differences"
    assert "No differences." in diff.to_html()


def test_summary():
    expected, actual = _tables()
    summary = diff_by_key(expected, actual, normalizers={"price": decimal_string}).summary()
    assert summary.splitlines()[0] == "1 missing, 1 extra, 1 changed"
    assert "missing: (3,)" in summary
    assert "extra: (4,)" in summary
    assert "changed: (2,) (name)" in summary


def test_summary_limits_examples():
    diff = diff_by_key({(i,): {"v": i} for i in range(20)}, {})
    assert "... and 15 more" in diff.summary()


def test_to_html_is_escaped_and_highlights_differences():
    expected, actual = _tables()
    page = diff_by_key(expected, actual, normalizers={"price": decimal_string}).to_html()
    assert page.startswith("<!DOCTYPE html>")
    assert "<style>" in page
    assert "&#x27;&lt;Dee&gt;&#x27;" in page  # repr of '<Dee>' escaped
    assert "<Dee>" not in page
    assert 'class="kind-missing"' in page
    assert 'class="kind-extra"' in page
    assert 'class="kind-changed"' in page
    # the changed key: 'name' row highlighted, 'id' row not
    assert '<tr class="diff"><td>name</td>' in page
    assert '<tr><td rowspan="3" class="kind-changed">' in page  # its first row ('id') is equal


def test_to_html_limit():
    diff = diff_by_key({(i,): {"v": i} for i in range(10)}, {})
    page = diff.to_html(limit=3)
    assert "Showing 3 of 10 differing keys." in page
    assert page.count('class="kind-missing"') == 3


def test_keydiff_to_html_without_changed_columns():
    diff = KeyDiff(changed={(1,): ({"a": 1, "b": 2}, {"a": 1, "b": 3})})
    page = diff.to_html()
    assert '<tr class="diff"><td>b</td>' in page
    assert "changed: (1,) (b)" in diff.summary()


def test_compare_tables_ok():
    expected, _ = _tables()
    actual = {k: {**v, "price": str(v["price"])} for k, v in expected.items()}
    report = compare_tables(expected, actual, normalizers={"price": decimal_string})
    assert report.ok
    assert report.expected_count == report.actual_count == 3
    assert report.expected_checksum == report.actual_checksum
    assert report.summary().startswith("integrity OK: expected 3 rows")


def test_compare_tables_mismatch():
    expected, actual = _tables()
    report = compare_tables(expected, actual, normalizers={"price": decimal_string})
    assert not report.ok
    assert report.expected_checksum != report.actual_checksum
    assert "integrity MISMATCH" in report.summary()
    assert "1 missing, 1 extra, 1 changed" in report.summary()
    assert report.as_dict()["missing"] == 1
    json.dumps(report.as_dict())


# ------------------------------------------------------------------ event streams


def _ev(op, key, after=None, before=None, **source):
    return ChangeEvent(op, (key,), before, after, source, None, None)


def test_rebuild_from_events():
    events = [
        _ev("r", 1, {"id": 1, "v": "a"}),
        _ev("c", 2, {"id": 2, "v": "b"}),
        _ev("u", 1, {"id": 1, "v": "a2"}, {"id": 1, "v": "a"}),
        _ev("d", 2, before={"id": 2}),
        Tombstone((2,), {}, None),
        _ev("c", 3, {"id": 3, "v": "c"}),
        _ev("d", 99, before={"id": 99}),  # delete of an unknown key is harmless
    ]
    assert rebuild_from_events(events) == {(1,): {"id": 1, "v": "a2"}, (3,): {"id": 3, "v": "c"}}


def test_rebuild_copies_rows():
    after = {"id": 1}
    state = rebuild_from_events([_ev("c", 1, after)])
    state[(1,)]["id"] = 2
    assert after == {"id": 1}


def test_check_commit_order_ok():
    events = [
        _ev("c", 1, {}, lsn=10),
        _ev("c", 2, {}, lsn=5),  # other keys may interleave
        _ev("u", 1, {}, lsn=10),  # equal is fine (same transaction)
        _ev("u", 1, {}, lsn=20),
        Tombstone((1,), {"offset": 0}, None),
    ]
    assert check_commit_order(events) == []


def test_check_commit_order_lsn_backwards():
    problems = check_commit_order([_ev("c", 1, {}, lsn=30), _ev("u", 1, {}, lsn=20)])
    assert problems == ["key (1,): event #1 (op 'u') at lsn 20 comes after event #0 at lsn 30"]


def test_check_commit_order_offsets_and_binlog():
    events = [
        _ev("c", 1, {}, partition=0, offset=5),
        _ev("u", 1, {}, partition=0, offset=4),
        _ev("c", 2, {}, file="binlog.000002", pos=100),
        _ev("u", 2, {}, file="binlog.000001", pos=900),
        _ev("u", 3, {}),  # no position: skipped
    ]
    problems = check_commit_order(events)
    assert len(problems) == 2
    assert "offset 0/4" in problems[0]
    assert "binlog binlog.000001/900/0" in problems[1]


# ------------------------------------------------------------------ keyless tables


def _kl(op, after=None, before=None, offset=0):
    return ChangeEvent(op, None, before, after, {"offset": offset}, None, None)


def test_keyless_rebuild_is_a_multiset():
    a, b = {"note": "a", "n": 1}, {"note": "b", "n": 2}
    events = [
        _kl("r", a),
        _kl("c", a),  # the same row twice: a keyless table may hold duplicates
        _kl("c", b),
        _kl("u", {"note": "a2", "n": 1}, before=a),  # replaces ONE of the two equal rows
        _kl("d", before=b),
        Tombstone(None, {"offset": 6}, None),  # a keyless tombstone names nothing to forget
    ]
    rebuilt = rebuild_from_events(events)
    assert rebuilt.keyless
    assert sorted(rebuilt.values(), key=lambda r: r["note"]) == [a, {"note": "a2", "n": 1}]
    expected = [{"note": "a2", "n": 1}, a]
    report = compare_multisets(expected, rebuilt.values())
    assert report.ok, report.summary()
    assert report.expected_count == 2


def test_keyless_delete_removes_one_of_two_equal_rows():
    a = {"v": 1}
    rebuilt = rebuild_from_events([_kl("c", a), _kl("c", a), _kl("d", before=a)])
    assert list(rebuilt.values()) == [a]


@pytest.mark.parametrize("op", ["u", "d"])
def test_keyless_change_without_before_image_names_replica_identity_full(op):
    events = [_kl("c", {"v": 1}), _kl(op, {"v": 2} if op == "u" else None, before=None)]
    with pytest.raises(KeylessReplayError, match="REPLICA IDENTITY FULL"):
        rebuild_from_events(events)


def test_keyless_change_of_an_unknown_row_is_an_error():
    with pytest.raises(KeylessReplayError, match="no row equal"):
        rebuild_from_events([_kl("c", {"v": 1}), _kl("d", before={"v": 9})])


def test_keyed_and_keyless_events_do_not_mix():
    with pytest.raises(ValueError, match="mix keyed and keyless"):
        rebuild_from_events([_ev("c", 1, {"id": 1}), _kl("c", {"v": 1})])


def test_multiset_comparison_sees_a_missing_duplicate():
    a = {"v": 1}
    report = compare_multisets([a, a], [a])
    assert not report.ok
    assert (report.expected_count, report.actual_count) == (2, 1)
    assert report.expected_checksum != report.actual_checksum
    assert len(report.diff.missing) == 1 and not report.diff.extra


def test_multiset_comparison_uses_normalizers():
    source = [{"price": Decimal("12.50")}]
    events = [{"price": "12.50"}]
    assert not compare_multisets(source, events).ok
    assert compare_multisets(source, events, normalizers={"price": decimal_string}).ok


def test_rows_by_identity_numbers_duplicates():
    keyed = rows_by_identity([{"v": 1}, {"v": 1}, {"v": 2}])
    assert sorted(n for _, n in keyed) == [0, 0, 1]


# ------------------------------------------------------------------ unchanged TOAST values

PLACEHOLDER = "__debezium_unavailable_value"
PLACEHOLDER_BYTEA = "X19kZWJleml1bV91bmF2YWlsYWJsZV92YWx1ZQ=="  # base64 of the placeholder


def test_unchanged_toast_value_keeps_the_previous_value():
    big = "x" * 10_000
    events = [
        _ev("c", 1, {"id": 1, "body": big, "blob": "AAEC", "tags": ["a"], "n": 1}),
        _ev(
            "u",
            1,
            {
                "id": 1,
                "body": PLACEHOLDER,
                "blob": PLACEHOLDER_BYTEA,
                "tags": [PLACEHOLDER],
                "n": 2,
            },
        ),
        _ev("u", 1, {"id": 1, "body": big + "!", "blob": "AAEC", "tags": ["a"], "n": 3}),
    ]
    rebuilt = rebuild_from_events(events)
    assert rebuilt == {(1,): {"id": 1, "body": big + "!", "blob": "AAEC", "tags": ["a"], "n": 3}}
    assert rebuilt.unavailable_events == 1
    assert rebuilt.unavailable_unresolved == 0
    state = rebuild_from_events(events[:2])
    assert state[(1,)] == {"id": 1, "body": big, "blob": "AAEC", "tags": ["a"], "n": 2}


def test_unavailable_placeholder_is_configurable_and_can_be_turned_off():
    events = [_ev("c", 1, {"id": 1, "body": "long"}), _ev("u", 1, {"id": 1, "body": "<toast>"})]
    assert rebuild_from_events(events)[(1,)]["body"] == "<toast>"
    rebuilt = rebuild_from_events(events, unavailable_placeholder="<toast>")
    assert rebuilt[(1,)]["body"] == "long"
    assert rebuilt.unavailable_events == 1
    plain = [_ev("c", 1, {"id": 1, "body": "x"}), _ev("u", 1, {"id": 1, "body": PLACEHOLDER})]
    assert rebuild_from_events(plain, unavailable_placeholder=None)[(1,)]["body"] == PLACEHOLDER


def test_placeholder_without_a_previous_value_is_counted_unresolved():
    rebuilt = rebuild_from_events([_ev("u", 1, {"id": 1, "body": PLACEHOLDER})])
    assert rebuilt[(1,)]["body"] == PLACEHOLDER
    assert (rebuilt.unavailable_events, rebuilt.unavailable_unresolved) == (1, 1)


def test_keyless_update_takes_unchanged_values_from_the_matched_row():
    row = {"body": "long text", "n": 1}
    events = [_kl("c", row), _kl("u", {"body": PLACEHOLDER, "n": 2}, before=row)]
    rebuilt = rebuild_from_events(events)
    assert list(rebuilt.values()) == [{"body": "long text", "n": 2}]
    assert rebuilt.unavailable_events == 1
