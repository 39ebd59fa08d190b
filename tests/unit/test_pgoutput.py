"""The pgoutput decoder, fed bytes built by hand from "Logical Replication Message Formats"."""

from __future__ import annotations

import datetime as dt
import struct
from decimal import Decimal

import pytest

from cdc_support.postgres.pgoutput import UNCHANGED_TOAST, PgoutputDecoder
from cdc_support.postgres.pgoutput_messages import (
    Begin,
    Commit,
    Delete,
    Insert,
    LogicalMessage,
    Origin,
    PgoutputError,
    Relation,
    Truncate,
    TypeInfo,
    Update,
    format_lsn,
    parse_lsn,
    pg_timestamp,
)
from cdc_support.postgres.pgoutput_parser import decode_message
from cdc_support.postgres.pgoutput_values import convert_text

UNCHANGED = object()
TS_2024 = int(
    (
        dt.datetime(2024, 1, 1, tzinfo=dt.UTC) - dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    ).total_seconds()
    * 1e6
)


def s(text: str) -> bytes:
    return text.encode() + b"\0"


def begin(final_lsn: int = 0x100, ts_us: int = TS_2024, xid: int = 700) -> bytes:
    return b"B" + struct.pack(">QqI", final_lsn, ts_us, xid)


def commit(commit_lsn: int = 0x100, end_lsn: int = 0x130, ts_us: int = TS_2024) -> bytes:
    return b"C" + struct.pack(">bQQq", 0, commit_lsn, end_lsn, ts_us)


def relation(
    relid: int = 16384,
    namespace: str = "public",
    name: str = "customers",
    identity: str = "d",
    columns: tuple[tuple[int, str, int], ...] = ((1, "id", 20), (0, "name", 25), (0, "ts", 1184)),
) -> bytes:
    body = b"R" + struct.pack(">I", relid) + s(namespace) + s(name) + identity.encode()
    body += struct.pack(">h", len(columns))
    for flags, column, oid in columns:
        body += struct.pack(">b", flags) + s(column) + struct.pack(">Ii", oid, -1)
    return body


def tup(*values: object) -> bytes:
    out = struct.pack(">h", len(values))
    for value in values:
        if value is None:
            out += b"n"
        elif value is UNCHANGED:
            out += b"u"
        else:
            raw = str(value).encode()
            out += b"t" + struct.pack(">i", len(raw)) + raw
    return out


def insert(values: bytes, relid: int = 16384) -> bytes:
    return b"I" + struct.pack(">I", relid) + b"N" + values


def update(new: bytes, old: bytes | None = None, kind: str = "O", relid: int = 16384) -> bytes:
    head = b"U" + struct.pack(">I", relid)
    if old is not None:
        head += kind.encode() + old
    return head + b"N" + new


def delete(old: bytes, kind: str = "O", relid: int = 16384) -> bytes:
    return b"D" + struct.pack(">I", relid) + kind.encode() + old


# --------------------------------------------------------------------------- single messages


def test_begin_and_commit_carry_lsns_xid_and_commit_time() -> None:
    b = decode_message(begin(final_lsn=0x16B374D848, xid=42))
    assert b == Begin(0x16B374D848, dt.datetime(2024, 1, 1, tzinfo=dt.UTC).timestamp(), 42)
    c = decode_message(commit(commit_lsn=5, end_lsn=9, ts_us=TS_2024 + 1_500_000))
    assert isinstance(c, Commit)
    assert (c.commit_lsn, c.end_lsn) == (5, 9)
    assert c.commit_ts == pytest.approx(
        dt.datetime(2024, 1, 1, 0, 0, 1, 500000, tzinfo=dt.UTC).timestamp()
    )


def test_relation_lists_columns_with_their_identity_flag_and_type() -> None:
    r = decode_message(relation(identity="f"))
    assert isinstance(r, Relation)
    assert (r.relation_id, r.qualified_name, r.replica_identity) == (
        16384,
        "public.customers",
        "FULL",
    )
    assert [(c.name, c.type_oid, c.identity) for c in r.columns] == [
        ("id", 20, True),
        ("name", 25, False),
        ("ts", 1184, False),
    ]
    assert decode_message(relation(namespace="")).namespace == "pg_catalog"


def test_insert_update_delete_tuples() -> None:
    assert decode_message(insert(tup(1, "Ann", None))) == Insert(
        16384, (("t", b"1"), ("t", b"Ann"), ("n", None))
    )
    plain = decode_message(update(tup(1, "Bo", None)))
    assert isinstance(plain, Update) and plain.old is None and plain.old_kind is None
    full = decode_message(update(tup(1, "Bo", None), old=tup(1, "Ann", None)))
    assert isinstance(full, Update) and full.old_kind == "O" and full.old is not None
    keyed = decode_message(delete(tup(1, None, None), kind="K"))
    assert keyed == Delete(16384, "K", (("t", b"1"), ("n", None), ("n", None)))
    toast = decode_message(update(tup(1, UNCHANGED, None)))
    assert isinstance(toast, Update) and toast.new[1] == ("u", None)


def test_other_messages() -> None:
    assert decode_message(b"O" + struct.pack(">Q", 77) + s("node_a")) == Origin(77, "node_a")
    assert decode_message(b"Y" + struct.pack(">I", 99999) + s("public") + s("mood")) == TypeInfo(
        99999, "public", "mood"
    )
    truncate = b"T" + struct.pack(">ib", 2, 1) + struct.pack(">II", 1, 2)
    assert decode_message(truncate) == Truncate((1, 2), 1)
    message = b"M" + struct.pack(">bQ", 1, 8) + s("app") + struct.pack(">i", 2) + b"hi"
    assert decode_message(message) == LogicalMessage(True, 8, "app", b"hi")


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        (b"", "empty"),
        (b"Z\x00", "unknown pgoutput message type 'Z'"),
        (b"B\x00\x01", "message too short"),
        (b"I" + struct.pack(">I", 1) + b"X", "expected 'N'"),
        (b"D" + struct.pack(">I", 1) + b"N", "expected K or O"),
        (b"R" + struct.pack(">I", 1) + b"public", "unterminated string"),
        (insert(struct.pack(">h", 1) + b"q"), "unknown tuple column kind 'q'"),
    ],
)
def test_malformed_messages_say_what_is_wrong(payload: bytes, words: str) -> None:
    with pytest.raises(PgoutputError, match=words):
        decode_message(payload)


# --------------------------------------------------------------------------- values and LSNs


def test_lsn_text_round_trip() -> None:
    assert format_lsn(0x16B374D848) == "16/B374D848"
    assert parse_lsn("16/B374D848") == 0x16B374D848
    with pytest.raises(ValueError, match="not an LSN"):
        parse_lsn("16B374D848")


def test_text_values_become_python_values() -> None:
    assert convert_text(20, "42") == 42
    assert convert_text(16, "t") is True
    assert convert_text(1700, "12.50") == Decimal("12.50")
    assert convert_text(1184, "2024-01-01 10:00:00.5+00") == dt.datetime(
        2024, 1, 1, 10, 0, 0, 500000, tzinfo=dt.UTC
    )
    assert convert_text(1184, "infinity") == "infinity"
    assert convert_text(1082, "2024-02-29") == dt.date(2024, 2, 29)
    assert convert_text(3802, '{"a": [1, 2]}') == {"a": [1, 2]}
    assert convert_text(1042, "US") == "US"  # unknown to the converter: text
    assert pg_timestamp(0) == dt.datetime(2000, 1, 1, tzinfo=dt.UTC).timestamp()


# --------------------------------------------------------------------------- the decoder


def _feed(decoder: PgoutputDecoder, *messages: bytes, observed: float = 9.0):
    result = None
    for lsn, message in enumerate(messages, start=1000):
        result = decoder.feed(message, lsn=lsn, observed_ts=observed)
    return result


def test_a_transaction_is_handed_over_at_its_commit_as_change_events() -> None:
    decoder = PgoutputDecoder(key_columns={"public.customers": ("id",)})
    assert (
        decoder.feed(
            relation(identity="f", columns=((1, "id", 20), (1, "name", 25), (1, "ts", 1184)))
        )
        is None
    )
    assert decoder.feed(begin(xid=7)) is None
    tx = _feed(
        decoder,
        insert(tup(1, "Ann", "2024-01-01 00:00:00+00")),
        update(tup(1, "Bo", "2024-01-01 00:00:00+00"), old=tup(1, "Ann", "2024-01-01 00:00:00+00")),
        delete(tup(1, "Bo", "2024-01-01 00:00:00+00")),
        commit(commit_lsn=0x200, end_lsn=0x230, ts_us=TS_2024),
    )
    assert tx is not None and (tx.xid, tx.commit_lsn, tx.end_lsn) == (7, 0x200, 0x230)
    assert [e.op for e in tx.events] == ["c", "u", "d"]
    c, u, d = tx.events
    assert c.key == (1,) and c.before is None and c.after is not None and c.after["name"] == "Ann"
    assert u.before is not None and u.before["name"] == "Ann" and u.after["name"] == "Bo"  # type: ignore[index]
    assert d.after is None and d.before == {
        "id": 1,
        "name": "Bo",
        "ts": dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
    }
    assert [e.source["lsn"] for e in tx.events] == [1000, 1001, 1002]
    assert {e.commit_ts for e in tx.events} == {dt.datetime(2024, 1, 1, tzinfo=dt.UTC).timestamp()}
    assert {e.observed_ts for e in tx.events} == {9.0}
    assert c.source["replica_identity"] == "FULL" and c.source["table"] == "customers"


def test_default_replica_identity_gives_key_only_or_no_before_image() -> None:
    decoder = PgoutputDecoder()  # key = the columns flagged as identity
    decoder.feed(relation())
    decoder.feed(begin())
    tx = _feed(
        decoder,
        update(tup(1, "Bo", None)),  # key unchanged: no old tuple at all
        delete(tup(1, None, None), kind="K"),
        commit(),
    )
    assert tx is not None
    u, d = tx.events
    assert u.before is None and u.key == (1,)
    assert d.before == {"id": 1} and d.key == (1,)


def test_an_unchanged_toasted_value_is_taken_from_the_old_row_or_marked() -> None:
    decoder = PgoutputDecoder()
    decoder.feed(relation())
    decoder.feed(begin())
    tx = _feed(
        decoder,
        update(tup(1, UNCHANGED, None), old=tup(1, "long text", None)),
        update(tup(1, UNCHANGED, None)),
        commit(),
    )
    assert tx is not None
    assert tx.events[0].after["name"] == "long text"  # type: ignore[index]
    assert tx.events[1].after["name"] == UNCHANGED_TOAST  # type: ignore[index]


def test_changes_of_other_tables_are_left_out_when_tables_are_given() -> None:
    decoder = PgoutputDecoder(tables=["public.customers"])
    decoder.feed(relation(relid=1, name="customers"))
    decoder.feed(relation(relid=2, name="orders"))
    decoder.feed(begin())
    tx = _feed(
        decoder, insert(tup(1, "a", None), relid=2), insert(tup(2, "b", None), relid=1), commit()
    )
    assert tx is not None and [e.key for e in tx.events] == [(2,)]


def test_decoder_errors_name_the_problem() -> None:
    decoder = PgoutputDecoder()
    with pytest.raises(PgoutputError, match="outside a transaction"):
        decoder.feed(insert(tup(1, "a", None)))
    with pytest.raises(PgoutputError, match="without a begin"):
        decoder.feed(commit())
    decoder.feed(begin())
    decoder.feed(insert(tup(1, "a", None), relid=5))
    with pytest.raises(PgoutputError, match="before its Relation message"):
        decoder.feed(commit())
    decoder.feed(relation(relid=6))
    decoder.feed(begin())
    decoder.feed(insert(tup(1, "a"), relid=6))
    with pytest.raises(PgoutputError, match="tuple has 2 columns"):
        decoder.feed(commit())
