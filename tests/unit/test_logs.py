"""JSON-lines logging: the keys of metrics.md "Logs", one line per record, and the harness's
loggers writing a file without changing what reaches pytest's own (root) handlers."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from cdc_support.logs import LOG_KEYS, JsonFormatter, configure_json_logging


def _record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("cdc_support.demo", logging.INFO, __file__, 1, message, args, None)
    record.__dict__.update(extra)
    return record


def _one_line(text: str) -> dict[str, object]:
    assert text.count("\n") == 0, text
    return json.loads(text)


def test_a_record_has_exactly_the_contract_keys_in_order() -> None:
    line = JsonFormatter("sink").format(_record("applied %d rows", 3))
    obj = _one_line(line)
    assert list(obj) == list(LOG_KEYS) == ["timestamp", "level", "component", "logger", "message"]
    assert obj["level"] == "INFO" and obj["component"] == "sink"
    assert obj["logger"] == "cdc_support.demo" and obj["message"] == "applied 3 rows"


def test_the_timestamp_is_iso_8601_in_utc() -> None:
    record = _record("x")
    record.created = 1_800_000_000.25  # 2027-01-15T08:00:00.250Z
    stamp = str(_one_line(JsonFormatter("harness").format(record))["timestamp"])
    assert stamp == "2027-01-15T08:00:00.250Z"
    parsed = datetime.fromisoformat(stamp)
    assert parsed.utcoffset() is not None and parsed.utcoffset().total_seconds() == 0
    assert parsed == datetime.fromtimestamp(1_800_000_000.25, UTC)


def test_extras_follow_the_contract_keys_and_fixed_fields_fill_in_the_rest() -> None:
    formatter = JsonFormatter("sink", fields={"topic": "shop.public.customers", "table": "t0"})
    obj = _one_line(formatter.format(_record("m", connector="c1", table="t1", batch=7)))
    assert list(obj)[len(LOG_KEYS) :] == ["connector", "topic", "table", "batch"]
    assert obj["connector"] == "c1" and obj["topic"] == "shop.public.customers"
    assert obj["table"] == "t1"  # the record's own value wins over the fixed field
    assert obj["batch"] == 7


def test_values_json_cannot_hold_are_written_as_text() -> None:
    obj = _one_line(JsonFormatter("harness").format(_record("m", where=object)))
    assert obj["where"] == str(object)


def test_an_exception_is_one_field_and_the_record_stays_one_line() -> None:
    try:
        raise ValueError("bad\nvalue")
    except ValueError:
        record = logging.LogRecord(
            "x", logging.ERROR, __file__, 1, "failed:\n  %s", ("two\nlines",), sys.exc_info()
        )
    line = JsonFormatter("sink").format(record)
    obj = _one_line(line)
    assert obj["level"] == "ERROR" and obj["message"] == "failed:\n  two\nlines"
    exception = str(obj["exception"])
    assert exception.startswith("Traceback (most recent call last):")
    assert exception.endswith("ValueError: bad\nvalue")


@pytest.fixture
def demo_logger() -> Iterator[logging.Logger]:
    logger = logging.getLogger("cdc_logs_demo")
    yield logger
    logger.handlers.clear()
    logger.setLevel(logging.NOTSET)
    logger.propagate = True


def test_a_file_gets_one_json_line_per_record_and_close_removes_the_handler(
    tmp_path, demo_logger
) -> None:
    path = tmp_path / "logs" / "harness.log"
    logging_ = configure_json_logging(path, "harness", "INFO", loggers=("cdc_logs_demo",))
    demo_logger.info("started %s", "x", extra={"topic": "t"})
    demo_logger.debug("not written: below INFO")
    logging_.close()
    demo_logger.warning("not written: closed")
    lines = path.read_text().splitlines()
    assert len(lines) == 1, lines
    obj = json.loads(lines[0])
    assert (obj["component"], obj["message"], obj["topic"]) == ("harness", "started x", "t")
    assert demo_logger.handlers == [] and demo_logger.level == logging.NOTSET
    assert demo_logger.propagate is True


def test_a_stream_target_and_the_root_logger(demo_logger) -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    before = (root.level, list(root.handlers))
    logging_ = configure_json_logging(stream, "sink", "DEBUG", fields={"topic": "t"})
    try:
        demo_logger.debug("deep")
    finally:
        logging_.close()
    assert (root.level, list(root.handlers)) == before
    obj = _one_line(stream.getvalue().rstrip("\n"))
    assert (obj["level"], obj["message"], obj["topic"]) == ("DEBUG", "deep", "t")


class _Seen(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_lowering_a_loggers_level_for_the_file_sends_no_more_to_the_root_handlers(
    tmp_path, demo_logger
) -> None:
    """pytest's handlers sit on the root logger: what they see must not change."""
    root = logging.getLogger()
    seen = _Seen()
    root.addHandler(seen)
    child = logging.getLogger("cdc_logs_demo.child")
    try:
        logging_ = configure_json_logging(
            tmp_path / "h.log", "harness", "INFO", loggers=("cdc_logs_demo",)
        )
        try:
            assert demo_logger.propagate  # pytest attaches its capture to non-propagating ones
            demo_logger.info("info: file only")
            child.warning("warning: both")
            child.setLevel(logging.INFO)  # as caplog.set_level(INFO, logger=...) does
            child.info("child info: both, its own level lets it through")
        finally:
            logging_.close()
            child.setLevel(logging.NOTSET)
    finally:
        root.removeHandler(seen)
    assert seen.messages == ["warning: both", "child info: both, its own level lets it through"]
    written = [json.loads(x)["message"] for x in (tmp_path / "h.log").read_text().splitlines()]
    assert written == ["info: file only", *seen.messages]
