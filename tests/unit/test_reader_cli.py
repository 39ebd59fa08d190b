"""`cdc-spec reader`: its event file (JSON lines, a torn last line tolerated), ChangeEvent's
JSON round trip, and options checked before anything connects (one line, exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cdc_support.cli import main
from cdc_support.event_file import EventFile, read_events
from cdc_support.events import ChangeEvent, MalformedEvent
from cdc_support.reader_cli import ENV_DSN


def _event(n: int, op: str = "c") -> ChangeEvent:
    row = {"id": n, "seq": n, "payload": f"p-{n}"}
    return ChangeEvent(
        op,  # type: ignore[arg-type]
        (n,),
        row if op in ("u", "d") else None,
        None if op == "d" else row,
        {"connector": "logical-decoding", "lsn": 100 + n, "lsn_text": "0/6A", "xid": 7},
        1_700_000_000.25 + n,
        1_700_000_000.5 + n,
    )


@pytest.mark.parametrize("op", ["c", "u", "d", "r"])
def test_from_json_dict_inverts_to_json_dict(op: str) -> None:
    event = _event(3, op)
    text = json.dumps(event.to_json_dict())
    assert ChangeEvent.from_json_dict(json.loads(text)) == event


def test_from_json_dict_keeps_a_keyless_event_and_unknown_timestamps() -> None:
    event = ChangeEvent("c", None, None, {"a": 1}, {}, None, None)
    assert ChangeEvent.from_json_dict(event.to_json_dict()) == event


def test_from_json_dict_of_other_types_gives_their_json_form() -> None:
    import datetime as dt
    import decimal

    when = dt.datetime(2024, 5, 1, 10, tzinfo=dt.UTC)
    event = ChangeEvent("c", (1,), None, {"at": when, "n": decimal.Decimal("1.50")}, {}, 1.0, 2.0)
    back = ChangeEvent.from_json_dict(event.to_json_dict())
    assert back.after == {"at": when.isoformat(), "n": "1.50"}
    assert back.to_json_dict() == event.to_json_dict()


@pytest.mark.parametrize(
    "data", [{"op": "x", "key": [1]}, {"key": [1]}, {"op": "c", "key": 5}, ["c"]]
)
def test_from_json_dict_names_what_is_wrong(data: object) -> None:
    with pytest.raises(MalformedEvent):
        ChangeEvent.from_json_dict(data)  # type: ignore[arg-type]


def test_event_file_appends_transactions_in_order(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "events.jsonl"
    with EventFile(path) as out:
        out.append([_event(1), _event(2, "u")])
        out.append([_event(3, "d")])
    with EventFile(path) as out:  # a second run appends
        out.append([_event(4)])
    assert read_events(path) == [_event(1), _event(2, "u"), _event(3, "d"), _event(4)]
    assert read_events(tmp_path / "missing.jsonl") == []


def test_a_torn_last_line_is_skipped_by_readers_and_cut_by_the_next_writer(
    tmp_path: Path,
) -> None:
    path = tmp_path / "events.jsonl"
    with EventFile(path) as out:
        out.append([_event(1), _event(2)])
    whole = path.read_bytes()
    path.write_bytes(whole + json.dumps(_event(3).to_json_dict()).encode()[:40])  # killed
    assert read_events(path) == [_event(1), _event(2)]
    with EventFile(path) as out:
        assert out.cut_bytes == 40
        out.append([_event(3)])
    assert read_events(path) == [_event(1), _event(2), _event(3)]


def test_a_broken_complete_line_is_an_error_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    with EventFile(path) as out:
        out.append([_event(1)])
    with path.open("a") as fh:
        fh.write("{not json\n")
    with pytest.raises(MalformedEvent, match=r"events\.jsonl line 2"):
        read_events(path)


MARIADB = ["mariadb", "--schema", "d", "--table", "t", "--position-file", "f"]


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        status = main(["reader", *argv])
    except SystemExit as exc:
        status = int(exc.code or 0)
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize(
    ("argv", "env", "named"),
    [
        (["postgres", "--table", "public.t", "--slot", "s", "--publication", "p"], "x", "--out"),
        (
            ["postgres", "--table", "t", "--slot", "s", "--publication", "p", "--out", "o"],
            None,
            f"--dsn (or ${ENV_DSN})",
        ),
        (
            ["postgres", "--table", "t", "--slot", "S-1", "--publication", "p", "--out", "o"],
            "dbname=x",
            "--slot",
        ),
        (
            ["postgres", "--table", "t", "--slot", "s", "--publication", "p", "--out", "o"],
            "not a pw@ dsn",
            "--dsn",
        ),
        (
            [*MARIADB, "--out", "o"],
            "mysql://cdc:pw@127.0.0.1:3306",
            "--server-id",
        ),
        (
            [*MARIADB, "--server-id", "0", "--out", "o"],
            "mysql://cdc:pw@127.0.0.1:3306",
            "--server-id",
        ),
        (
            [*MARIADB, "--server-id", "5", "--out", "o"],
            "postgresql://cdc:topsecret@127.0.0.1/x",
            "--dsn",
        ),
    ],
)
def test_bad_options_exit_2_with_one_line_naming_the_option(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    env: str | None,
    named: str,
) -> None:
    if env is None:
        monkeypatch.delenv(ENV_DSN, raising=False)
    else:
        monkeypatch.setenv(ENV_DSN, env)
    status, _, err = _run(capsys, *argv)
    assert status == 2
    assert len(err.strip().splitlines()) == 1, err
    assert named in err
    assert "topsecret" not in err and "pw@" not in err


def test_an_out_file_that_cannot_be_written_is_a_bad_option(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(ENV_DSN, "mysql://cdc:pw@127.0.0.1:1")
    blocker = tmp_path / "file"
    blocker.write_text("")
    status, _, err = _run(
        capsys,
        *["mariadb", "--schema", "d", "--table", "t", "--position-file", str(tmp_path / "p")],
        *["--server-id", "5", "--out", str(blocker / "events.jsonl")],
    )
    assert status == 2
    assert "--out" in err and len(err.strip().splitlines()) == 1


def test_help_names_both_sources(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = _run(capsys, "--help")
    assert status == 0
    assert "postgres" in out and "mariadb" in out


def test_without_fsync_each_a_sync_writes_what_was_appended(tmp_path: Path) -> None:
    with EventFile(tmp_path / "events.jsonl", fsync_each=False) as out:
        out.append([_event(1)])
        assert not out.synced
        out.sync()
        assert out.synced
    assert read_events(tmp_path / "events.jsonl") == [_event(1)]


def test_the_binlog_reader_saves_its_position_only_after_syncing_the_file(
    tmp_path: Path,
) -> None:
    from cdc_support.cli import build_parser
    from cdc_support.mysql.binlog_reader import BinlogPosition
    from cdc_support.reader_cli import _mariadb

    argv = ["reader", *MARIADB[:-1], str(tmp_path / "pos.json"), "--server-id", "7"]
    args = build_parser().parse_args([*argv, "--out", "o", "--dsn", "mysql://cdc:pw@h:1"])
    with EventFile(tmp_path / "events.jsonl") as out:
        out.fsync_each = False
        reader = _mariadb(args, build_parser(), out)  # builds it; connects on start() only
        out.append([_event(1)])
        reader.store.save(BinlogPosition("bin.000001", 4))
        assert out.synced, "the file is on disk before the position that confirms it"
    assert reader.store.load() == BinlogPosition("bin.000001", 4)
