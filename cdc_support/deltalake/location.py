"""Where a Delta table lives: a local folder or an object store URI plus its storage options.

The same code reads and writes both; only the :class:`DeltaLocation` changes. For an
S3-compatible store (MinIO, Ceph, R2, ...) give the ``s3://bucket/prefix`` URI and delta-rs's
storage options, for example::

    DeltaLocation(
        "s3://lake/cdc-spec",
        {
            "AWS_ENDPOINT_URL": "http://127.0.0.1:9000",
            "AWS_ACCESS_KEY_ID": "...",
            "AWS_SECRET_ACCESS_KEY": "...",
            "AWS_REGION": "us-east-1",
            "AWS_ALLOW_HTTP": "true",
            "aws_conditional_put": "etag",
        },
    )

``aws_conditional_put=etag`` makes commits safe for concurrent writers on stores that support
conditional puts (MinIO, R2); on AWS S3 itself delta-rs needs a locking provider
(``AWS_S3_LOCKING_PROVIDER=dynamodb``) or, for a single writer, ``AWS_S3_ALLOW_UNSAFE_RENAME=true``.
:meth:`DeltaLocation.parse` reads such a location from text: the URI and the options as a JSON
object (the pytest plugin's ``--cdc-delta-uri`` and ``--cdc-delta-storage-options``).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.fs as pa_fs
from deltalake.fs import DeltaStorageHandler

__all__ = ["DeltaLocation", "check_folder", "remove_location"]


@dataclass(frozen=True)
class DeltaLocation:
    """A table URI (local path, ``file://``, ``s3://``, ...) and the options to reach it."""

    uri: str
    storage_options: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def local(cls, path: str | os.PathLike[str]) -> DeltaLocation:
        """A table in a local folder (created on first write)."""
        return cls(str(Path(path).resolve()))

    @classmethod
    def parse(cls, uri: str, storage_options: str = "") -> DeltaLocation | None:
        """The location ``uri`` with ``storage_options``, a JSON object of delta-rs storage
        options (text, as an option or environment variable holds it); None when ``uri`` is
        empty. ValueError naming the expected form on bad options."""
        uri = uri.strip()
        if not uri:
            return None
        raw = storage_options.strip() or "{}"
        try:
            options = json.loads(raw)
            if not isinstance(options, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:
            raise ValueError(
                "must be a JSON object of delta-rs storage options, e.g. "
                '{"AWS_ENDPOINT_URL": "http://127.0.0.1:9000", "AWS_ALLOW_HTTP": "true"}; '
                f"got {raw!r} ({exc})"
            ) from None
        # JSON true/false -> "true"/"false", the spelling delta-rs's options use.
        return cls(uri, {str(k): _option_text(v) for k, v in options.items()})

    @property
    def is_local(self) -> bool:
        """True for a plain path or a ``file://`` URI."""
        return "://" not in self.uri or self.uri.startswith("file://")

    def child(self, name: str) -> DeltaLocation:
        """The location ``name`` below this one, with the same storage options."""
        if not name or "/" in name or name in (".", ".."):
            raise ValueError(f"a child location needs a plain folder name, got {name!r}")
        return DeltaLocation(f"{self.uri.rstrip('/')}/{name}", dict(self.storage_options))

    def options(self) -> dict[str, str] | None:
        """Storage options as delta-rs expects them (None when there are none)."""
        return dict(self.storage_options) or None

    def filesystem(self) -> pa_fs.FileSystem:
        """A pyarrow filesystem rooted at the table folder (same storage options as delta-rs)."""
        return pa_fs.PyFileSystem(DeltaStorageHandler(self.uri, self.options()))

    def __repr__(self) -> str:
        # Storage options hold credentials: show their names only.
        if not self.storage_options:
            return f"DeltaLocation({self.uri})"
        return f"DeltaLocation({self.uri}, options: {', '.join(sorted(self.storage_options))})"


def _option_text(value: object) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def check_folder(location: DeltaLocation) -> None:
    """NotADirectoryError naming the fix when a local table location is an existing file (a
    Delta table is a folder: its data files and ``_delta_log``)."""
    if not location.is_local:
        return
    path = _local_path(location)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(
            f"{path} is a file, not a folder: a Delta table is a folder (data files and "
            "_delta_log); give the path of a new folder or of an existing Delta table"
        )


def remove_location(location: DeltaLocation) -> None:
    """Delete the table at ``location``: data, change data and log (a no-op if it is absent)."""
    if location.is_local:
        shutil.rmtree(_local_path(location), ignore_errors=True)
        return
    fs = location.filesystem()
    # deltalake's handler cannot delete a root folder's contents in one call; list and delete.
    files = fs.get_file_info(pa_fs.FileSelector("", recursive=True, allow_not_found=True))
    for info in files:
        if info.type == pa_fs.FileType.File:
            fs.delete_file(info.path)


def _local_path(location: DeltaLocation) -> Path:
    return Path(location.uri.removeprefix("file://"))
