"""Ports reserved across processes: never handed out twice while held, never ephemeral."""

from __future__ import annotations

import json
import time
from pathlib import Path

from pytest_cdc.ports import ephemeral_range, reserve_ports


def test_reserved_ports_are_not_handed_out_again_while_held(tmp_path: Path) -> None:
    path = tmp_path / "ports.json"
    seen: set[int] = set()
    for _ in range(40):  # 400 ports: a collision among random picks would be likely
        ports = reserve_ports(10, path=path)
        assert len(set(ports)) == 10
        assert not seen & set(ports)
        seen |= set(ports)
    assert not seen & set(ephemeral_range())
    assert set(map(int, json.loads(path.read_text()))) == seen


def test_an_expired_reservation_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "ports.json"
    path.write_text(json.dumps({"20001": time.time() - 1, "20002": time.time() + 60}))
    reserve_ports(1, path=path)
    held = set(map(int, json.loads(path.read_text())))
    assert 20001 not in held and 20002 in held


def test_an_unreadable_reservation_file_starts_afresh(tmp_path: Path) -> None:
    path = tmp_path / "ports.json"
    path.write_text("not json")
    assert len(reserve_ports(2, path=path)) == 2
