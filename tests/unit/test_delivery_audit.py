"""The one per-key loss/duplicate computation, over any kind of item, and the audit of a
sequence-numbered workload built on it (hand-made change events)."""

from __future__ import annotations

from cdc_support.checks.delivery import Change, DeliveryAudit, compare_per_key
from cdc_support.events import ChangeEvent
from cdc_support.faults.workload import SequencedOp


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


# --------------------------------------------------------------------------- DeliveryAudit


def _ops(*kinds: tuple[str, int]) -> list[SequencedOp]:
    """Operations 1..n as (kind, id), committed one second apart from t=1000."""
    return [SequencedOp(n, op, (key,), 1000.0 + n) for n, (op, key) in enumerate(kinds, 1)]  # type: ignore[arg-type]


def _event(op: SequencedOp, *, before_seq: bool = True) -> ChangeEvent:
    """The change event a consumer delivers for ``op`` (a delete's before: the id alone
    unless ``before_seq``)."""
    (key,) = op.key
    after = None if op.op == "d" else {"id": key, "seq": op.seq, "payload": f"operation {op.seq}"}
    before = {"id": key, "seq": 0} if before_seq and op.op != "c" else None
    if op.op == "d" and not before_seq:
        before = {"id": key}
    return ChangeEvent(op.op, op.key, before, after, {}, op.committed_at, op.committed_at + 0.1)


WORKLOAD = _ops(("c", 1), ("c", 2), ("u", 1), ("d", 2), ("c", 3), ("u", 1), ("u", 3), ("d", 1))


def test_every_change_delivered_once_in_order_is_exactly_once() -> None:
    report = DeliveryAudit(WORKLOAD).audit(_event(op) for op in WORKLOAD)
    assert report.exactly_once and report.at_least_once
    assert (report.committed, report.delivered, report.duplicates) == (8, 8, 0)
    assert report.summary().startswith("8 committed, 8 delivered (+0 snapshot reads): 0 lost")


def test_a_change_never_delivered_is_lost_and_named_in_commit_order() -> None:
    delivered = [_event(op) for op in WORKLOAD if op.seq not in (3, 7)]
    report = DeliveryAudit(WORKLOAD).audit(delivered)
    assert report.lost == [Change((1,), "u", 3), Change((3,), "u", 7)]
    assert not report.at_least_once and not report.duplicated and not report.reordered
    assert "2 lost" in report.summary() and "lost: u id=1 seq=3, u id=3 seq=7" in report.summary()
    assert report.as_dict()["lost"] == 2


def test_a_range_replayed_after_a_restart_counts_each_repeat_as_a_duplicate() -> None:
    events = [_event(op) for op in WORKLOAD]
    replayed = events[:6] + events[3:6] + events[6:]  # ops 4..6 delivered again
    report = DeliveryAudit(WORKLOAD).audit(replayed)
    assert report.at_least_once and not report.exactly_once
    assert report.duplicated == {
        Change((2,), "d", None): 1,
        Change((3,), "c", 5): 1,
        Change((1,), "u", 6): 1,
    }
    assert report.duplicates == 3 and report.delivered == 11 and not report.lost
    assert not report.reordered, "a replay delivers nothing new out of order"
    assert report.latest_duplicated_commit == 1006.0, "the replayed range ends at op 6"
    assert report.as_dict()["examples"]["duplicated"][0] == "d id=2 x2"


def test_a_change_never_committed_is_unexpected_not_a_duplicate() -> None:
    events = [_event(op) for op in WORKLOAD]
    stray = ChangeEvent("u", (3,), None, {"id": 3, "seq": 99}, {}, None, None)
    ghost = ChangeEvent("c", (42,), None, {"id": 42, "seq": 5}, {}, None, None)
    report = DeliveryAudit(WORKLOAD).audit([*events, stray, ghost])
    assert report.unexpected == [Change((3,), "u", 99), Change((42,), "c", 5)]
    assert not report.duplicated and not report.lost and not report.at_least_once
    assert report.as_dict()["unexpected"] == 2


def test_snapshot_reads_are_counted_apart_and_audit_nothing() -> None:
    reads = [ChangeEvent("r", (k,), None, {"id": k, "seq": k}, {}, None, None) for k in (1, 2)]
    report = DeliveryAudit(WORKLOAD).audit([*reads, *(_event(op) for op in WORKLOAD)])
    assert report.snapshot_reads == 2 and report.delivered == 8 and report.exactly_once
    assert "(+2 snapshot reads)" in report.summary()


def test_deletes_are_identified_by_key_without_a_seq_in_before() -> None:
    events = [_event(op, before_seq=False) for op in WORKLOAD]
    assert [e.before for e in events if e.op == "d"] == [{"id": 2}, {"id": 1}]
    assert DeliveryAudit(WORKLOAD).audit(events).exactly_once


def test_a_seq_delivered_as_text_is_the_same_change() -> None:
    events = [_event(op) for op in WORKLOAD]
    as_text = [
        ChangeEvent(e.op, e.key, e.before, {**e.after, "seq": str(e.after["seq"])}, {}, None, None)
        if e.after
        else e
        for e in events
    ]
    assert DeliveryAudit(WORKLOAD).audit(as_text).exactly_once


def test_changes_of_a_key_delivered_out_of_commit_order_are_reordered() -> None:
    events = [_event(op) for op in WORKLOAD]
    events[2], events[5] = events[5], events[2]  # key 1: u6 before u3
    report = DeliveryAudit(WORKLOAD).audit(events)
    assert report.reordered == [(1,)] and report.at_least_once and not report.exactly_once
    assert report.as_dict()["keys_out_of_order"] == 1
