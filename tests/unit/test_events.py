import dataclasses
import datetime as dt
import json
from decimal import Decimal

import pytest

from cdc_support.events import ChangeEvent, MalformedEvent, Tombstone


def _event(op, before=None, after=None, commit_ts=100.0, observed_ts=100.25):
    return ChangeEvent(
        op=op,
        key=(1,),
        before=before,
        after=after,
        source={"lsn": 42, "snapshot": "false"},
        commit_ts=commit_ts,
        observed_ts=observed_ts,
    )


@pytest.mark.parametrize("op", ["c", "r", "u"])
def test_row_is_after_for_create_read_update(op):
    event = _event(op, before={"id": 1, "v": "old"}, after={"id": 1, "v": "new"})
    assert event.row == {"id": 1, "v": "new"}


def test_row_is_before_for_delete():
    event = _event("d", before={"id": 1, "v": "old"})
    assert event.row == {"id": 1, "v": "old"}


def test_lag_seconds():
    assert _event("c", after={}).lag_seconds == pytest.approx(0.25)
    assert _event("c", after={}, commit_ts=None).lag_seconds is None
    assert _event("c", after={}, observed_ts=None).lag_seconds is None


def test_negative_lag_is_kept_raw():
    assert _event("c", after={}, commit_ts=10.0, observed_ts=9.5).lag_seconds == -0.5


def test_event_is_frozen():
    event = _event("c", after={"id": 1})
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.op = "u"


def test_to_json_dict_is_serialisable_and_keeps_numbers():
    event = ChangeEvent(
        op="u",
        key=(1, "a"),
        before={"price": Decimal("1.50")},
        after={
            "price": Decimal("2.50"),
            "at": dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
            "blob": b"\x00\x01",
        },
        source={"lsn": 7},
        commit_ts=1_704_103_200.5,
        observed_ts=1_704_103_201.0,
    )
    data = json.loads(json.dumps(event.to_json_dict()))
    assert data["op"] == "u"
    assert data["key"] == [1, "a"]
    assert data["after"]["price"] == "2.50"
    assert data["after"]["at"] == "2024-01-01T00:00:00+00:00"
    assert data["commit_ts"] == 1_704_103_200.5
    assert data["commit_time"] == "2024-01-01T10:00:00.500000+00:00"
    assert data["lag_seconds"] == pytest.approx(0.5)


def test_tombstone_json():
    tomb = Tombstone(key=(3,), source={"topic": "t", "offset": 9}, observed_ts=None)
    data = json.loads(json.dumps(tomb.to_json_dict()))
    assert data == {
        "tombstone": True,
        "key": [3],
        "source": {"topic": "t", "offset": 9},
        "observed_ts": None,
        "observed_time": None,
    }


def test_malformed_event_is_a_value_error():
    assert issubclass(MalformedEvent, ValueError)
