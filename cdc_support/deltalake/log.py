"""The Delta commit log: open a table, its history and log entries, and vacuumed versions.

Each commit writes ``_delta_log/<version>.json``: one JSON action per line (``add``, ``remove``,
``cdc``, ``commitInfo``, ...). The feed of a version is read from its ``cdc`` files, else from its
data-changing ``add``/``remove`` files; once VACUUM deleted those files (or log cleanup the entry),
the version can no longer be read. :func:`unreadable_versions` finds such versions from the log,
before delta-rs would fail half-way through a read, and :class:`CdfVersionsUnavailable` names
them, the versions that can still be read, and the fix.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import unquote

import pyarrow.fs as pa_fs
from deltalake import DeltaTable

from cdc_support.deltalake.location import DeltaLocation

__all__ = [
    "CdfVersionsUnavailable",
    "check_versions_readable",
    "commit_actions",
    "commit_timestamps",
    "open_table",
    "unreadable_versions",
    "versions_unavailable",
]


class CdfVersionsUnavailable(RuntimeError):
    """The versions a reader needs can no longer be read (VACUUM or log cleanup removed them).

    ``needed`` is the inclusive version range asked for, ``available`` the inclusive range that
    can still be read (None when nothing can), ``missing`` maps each unreadable version to what
    is gone (file paths, or the commit log entry itself).
    """

    def __init__(
        self,
        uri: str,
        needed: tuple[int, int],
        available: tuple[int, int] | None,
        missing: Mapping[int, Sequence[str]],
        *,
        detail: str = "",
    ) -> None:
        self.uri = uri
        self.needed = needed
        self.available = available
        self.missing = {v: list(paths) for v, paths in missing.items()}
        versions = sorted(self.missing)
        first_gone = self.missing[versions[0]][0] if versions else "?"
        what = (
            f"version{'s' if len(versions) != 1 else ''} {_ranges(versions)}"
            if versions
            else "some versions"
        )
        if available is None:
            can_read = "no version of the requested range can be read any more"
        else:
            can_read = f"the feed can only be read from version {available[0]} to {available[1]}"
        lines = [
            f"the change data feed of {uri} needs versions {needed[0]}..{needed[1]}, but {what} "
            f"can no longer be read ({first_gone} is gone): {can_read}.",
            "cause: VACUUM removed data files (or log cleanup removed commit entries) that the "
            "feed of those versions is read from, before this reader got to them.",
            "fix: rebuild the consumer's state from a snapshot of the current table version and "
            "restart its checkpoint there. To avoid it, keep the retention of VACUUM "
            "(delta.deletedFileRetentionDuration) and of the log (delta.logRetentionDuration) "
            "longer than the longest time a consumer may stay behind.",
        ]
        if detail:
            lines.append(f"delta-rs said: {detail}")
        super().__init__("\n".join(lines))


def _ranges(versions: Sequence[int]) -> str:
    """[1, 2, 3, 5] -> '1..3, 5'."""
    parts: list[str] = []
    start = prev = versions[0]
    for v in [*versions[1:], None]:
        if v is not None and v == prev + 1:
            prev = v
            continue
        parts.append(str(start) if start == prev else f"{start}..{prev}")
        if v is not None:
            start = prev = v
    return ", ".join(parts)


# --------------------------------------------------------------------------- table access


def open_table(location: DeltaLocation, version: int | None = None) -> DeltaTable:
    """Open the table at ``location`` (at ``version``, else the latest)."""
    return DeltaTable(location.uri, version=version, storage_options=location.options())


def commit_timestamps(location: DeltaLocation) -> dict[int, int]:
    """Version -> commit timestamp (epoch milliseconds) for every version in the history."""
    return {int(h["version"]): int(h["timestamp"]) for h in open_table(location).history()}


def _log_path(version: int) -> str:
    return f"_delta_log/{version:020d}.json"


def commit_actions(location: DeltaLocation, version: int) -> list[dict[str, Any]]:
    """The actions of one commit as written in ``_delta_log/<version>.json`` (one per line).

    Raises FileNotFoundError when the entry is gone (log retention).
    """
    fs = location.filesystem()
    with fs.open_input_stream(_log_path(version)) as stream:
        text = stream.read().decode("utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _files_read_by_feed(actions: Iterable[Mapping[str, Any]]) -> list[str]:
    """Files the feed of one commit is read from: its cdc files, else its data-changing files."""
    cdc = [a["cdc"]["path"] for a in actions if "cdc" in a]
    if cdc:
        return cdc
    files = []
    for action in actions:
        for kind in ("add", "remove"):
            entry = action.get(kind)
            if entry is not None and entry.get("dataChange", True):
                files.append(entry["path"])
    return files


def _relative(path: str) -> str:
    # Paths in the log are relative to the table root and URL-encoded (partition values).
    return unquote(path)


def unreadable_versions(
    location: DeltaLocation, starting_version: int, ending_version: int
) -> dict[int, list[str]]:
    """Versions in the inclusive range whose feed cannot be read, with what is missing.

    A version is unreadable when its commit log entry is gone, or when a file its feed is read
    from (its ``cdc`` files, else its data-changing ``add``/``remove`` files) no longer exists.
    """
    fs = location.filesystem()
    missing: dict[int, list[str]] = {}
    for version in range(starting_version, ending_version + 1):
        try:
            actions = commit_actions(location, version)
        except FileNotFoundError:
            missing[version] = [f"commit log entry {_log_path(version)}"]
            continue
        files = [_relative(p) for p in _files_read_by_feed(actions)]
        if not files:
            continue
        gone = [
            path
            for path, info in zip(files, fs.get_file_info(files), strict=True)
            if info.type == pa_fs.FileType.NotFound
        ]
        if gone:
            missing[version] = gone
    return missing


def check_versions_readable(
    location: DeltaLocation, starting_version: int, ending_version: int
) -> None:
    """Raise :class:`CdfVersionsUnavailable` unless every version in the range can be read."""
    missing = unreadable_versions(location, starting_version, ending_version)
    if missing:
        raise versions_unavailable(location, (starting_version, ending_version), missing)


def versions_unavailable(
    location: DeltaLocation,
    needed: tuple[int, int],
    missing: Mapping[int, Sequence[str]],
    detail: str = "",
) -> CdfVersionsUnavailable:
    """The error for ``missing`` versions of the ``needed`` range (``detail``: delta-rs's words)."""
    latest = open_table(location).version()
    first_readable = max(missing) + 1 if missing else needed[0]
    available = (first_readable, latest) if first_readable <= latest else None
    return CdfVersionsUnavailable(location.uri, needed, available, missing, detail=detail)
