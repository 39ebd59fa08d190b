"""The one checkpoint: atomic and durable writes, bound to its source, corrupt files refused."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from cdc_support.checkpoint import CheckpointError, JsonCheckpoint


def test_a_position_round_trips_through_a_new_object(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "cp.json"
    JsonCheckpoint(path, "table A").save({"version": 3, "keys": [[1, "a"]]})
    assert JsonCheckpoint(path, "table A").load() == {"version": 3, "keys": [[1, "a"]]}
    assert [p.name for p in path.parent.iterdir()] == ["cp.json"]  # no temp file left
    stored = JsonCheckpoint.read(path)
    assert stored is not None and stored.source == "table A" and stored.saved_at


def test_nothing_saved_loads_none_and_memory_needs_no_file(tmp_path: Path) -> None:
    assert JsonCheckpoint(tmp_path / "none.json", "s").load() is None
    memory = JsonCheckpoint(None, "s")
    assert memory.load() is None
    memory.save({"a": [1]})
    assert memory.load() == {"a": [1]}
    assert list(tmp_path.iterdir()) == []


def test_a_crash_before_the_rename_leaves_the_old_position(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkpoint = JsonCheckpoint(tmp_path / "cp.json", "s")
    checkpoint.save({"pos": 10})

    def power_cut(src: object, dst: object) -> None:
        raise OSError("power cut before the rename")

    monkeypatch.setattr(os, "replace", power_cut)
    with pytest.raises(OSError, match="power cut"):
        checkpoint.save({"pos": 999})
    monkeypatch.undo()
    assert checkpoint.load() == {"pos": 10}
    assert [p.name for p in tmp_path.iterdir()] == ["cp.json"]  # the temp file is gone too


def test_the_file_and_its_folder_are_fsynced_before_save_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        calls.append("fsync dir" if os.path.isdir(f"/proc/self/fd/{fd}") else "fsync file")
        real_fsync(fd)

    def replace(src: str, dst: str) -> None:
        calls.append("replace")
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    JsonCheckpoint(tmp_path / "cp.json", "s").save({"pos": 1})
    assert calls == ["fsync file", "replace", "fsync dir"]


def test_a_file_written_for_another_source_is_refused_naming_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "cp.json"
    JsonCheckpoint(path, "s3://bucket/orders").save({"last_version": 4})
    with pytest.raises(CheckpointError) as caught:
        JsonCheckpoint(path, "s3://bucket/customers").load()
    message = str(caught.value)
    assert "\n" not in message
    assert "belongs to 's3://bucket/orders', not 's3://bucket/customers'" in message
    assert "delete it" in message and "its own checkpoint path" in message


@pytest.mark.parametrize(
    "content",
    ["{broken", "", "null", "[1, 2]", '{"position": {}}', '{"source": "s", "position": 3}'],
    ids=["garbage", "empty", "null", "list", "no-source", "position-not-object"],
)
def test_a_corrupt_file_is_refused_in_one_line_naming_the_fix(tmp_path: Path, content: str) -> None:
    path = tmp_path / "cp.json"
    path.write_text(content)
    with pytest.raises(CheckpointError) as caught:
        JsonCheckpoint(path, "s", start_over="the consumer starts at version 0").load()
    message = str(caught.value)
    assert "\n" not in message
    assert str(path) in message
    assert "delete it to start over (the consumer starts at version 0)" in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_a_position_that_is_not_json_is_refused_before_touching_the_file(tmp_path: Path) -> None:
    path = tmp_path / "cp.json"
    checkpoint = JsonCheckpoint(path, "s")
    checkpoint.save({"pos": 1})
    with pytest.raises(TypeError):
        checkpoint.save({"pos": object()})
    assert json.loads(path.read_text())["position"] == {"pos": 1}
