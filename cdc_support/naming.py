"""Names of what a scenario creates: databases, slots, publications, connectors, topic prefixes,
consumer groups.

PostgreSQL truncates identifiers at 63 bytes (NAMEDATALEN - 1) and replication slot names may
only hold ``[a-z0-9_]``; one scheme keeps every name within both rules and unique per
scenario, so scenarios can share one server, broker and Connect worker.
"""

from __future__ import annotations

import re
import uuid

MAX_IDENTIFIER = 63
"""PostgreSQL's longest identifier (slot, publication, database names)."""

PUBLICATION_SUFFIX = "_pub"
_UNIQUE_TAIL = 9  # "_" + the 8 hex digits that end every scenario name
_KINDS = ("pg", "mariadb", "mysql")


def slug(text: str) -> str:
    """Lowercase ``[a-z0-9_]`` form of ``text`` (runs of anything else become one ``_``)."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def scenario_name(label: str, *, prefix: str = "cdc") -> str:
    """A unique, valid identifier for one scenario: prefix, a slug of the label, a short id."""
    suffix = uuid.uuid4().hex[:8]
    room = MAX_IDENTIFIER - len(prefix) - len(suffix) - 2
    return f"{prefix}_{slug(label)[: max(room, 0)].rstrip('_')}_{suffix}"


def _shorten(name: str, room: int) -> str:
    """``name`` cut to ``room`` characters from the middle, keeping its unique tail."""
    if len(name) <= room:
        return name
    head = name[: room - _UNIQUE_TAIL].rstrip("_")
    return head + name[-_UNIQUE_TAIL:]


def connector_name(kind: str, scenario: str, index: int) -> str:
    """The name of a scenario's ``index``-th connector of one source kind (pg, mariadb, mysql).

    ``<kind>_<scenario>_<index>``, lowercase ``[a-z0-9_]``, at most 59 characters so that its
    publication name (:func:`publication_name`) still fits in 63; a long scenario name is
    shortened in the middle, keeping its unique id. The same string serves as Kafka Connect
    connector name, Debezium ``topic.prefix`` and PostgreSQL replication slot name, so two
    connectors of one test — of the same or of different kinds — never share any of them.
    """
    if kind not in _KINDS:
        raise ValueError(f"unknown connector kind {kind!r}; choose one of {', '.join(_KINDS)}")
    if index < 0:
        raise ValueError(f"connector index must be >= 0, not {index}")
    tail = f"_{index}"
    room = MAX_IDENTIFIER - len(PUBLICATION_SUFFIX) - len(kind) - 1 - len(tail)
    return f"{kind}_{_shorten(slug(scenario), room)}{tail}"


def publication_name(connector: str) -> str:
    """The PostgreSQL publication of a connector (or slot) named by :func:`connector_name`."""
    name = connector + PUBLICATION_SUFFIX
    if len(name) > MAX_IDENTIFIER:
        raise ValueError(
            f"publication name {name!r} is longer than {MAX_IDENTIFIER} characters; "
            "name the connector with cdc_support.naming.connector_name"
        )
    return name


def slot_name(scenario: str, index: int = 0) -> str:
    """A scenario's ``index``-th replication slot outside Debezium (logical decoding, a
    capture approach): the scenario name, then ``_<index>`` after the first, shortened in the
    middle so that its :func:`publication_name` fits in 63 characters."""
    if index < 0:
        raise ValueError(f"slot index must be >= 0, not {index}")
    tail = f"_{index}" if index else ""
    room = MAX_IDENTIFIER - len(PUBLICATION_SUFFIX) - len(tail)
    return _shorten(slug(scenario), room) + tail


def database_name(scenario: str, index: int, label: str) -> str:
    """One more database of a scenario: ``<scenario>_<index>_<label>`` in 63 characters,
    keeping the scenario's unique id and up to 16 characters of the label."""
    tail = f"_{index}_{slug(label)[:16].rstrip('_')}".rstrip("_")
    return _shorten(slug(scenario), MAX_IDENTIFIER - len(tail)) + tail


def group_id(purpose: str) -> str:
    """A Kafka consumer group of its own for one reader: ``cdc-spec-<purpose>-<8 hex>``."""
    return f"cdc-spec-{slug(purpose).replace('_', '-')}-{uuid.uuid4().hex[:8]}"
