"""The pyiceberg SQL catalog: a SQLite file in the warehouse by default, or PostgreSQL.

pyiceberg's :class:`~pyiceberg.catalog.sql.SqlCatalog` keeps the pointer to each table's
current metadata file in two tables of a SQLAlchemy database; the data and metadata files live
in a warehouse folder. Several catalogs can share one database: rows are kept apart by catalog
name.
"""

from __future__ import annotations

import os
from pathlib import Path

from pyiceberg.catalog.sql import SqlCatalog

from cdc_support.iceberg.errors import IcebergChangelogError

__all__ = [
    "CATALOG_URI_ENV",
    "check_catalog_uri",
    "check_warehouse",
    "open_catalog",
    "redact_uri",
]

CATALOG_URI_ENV = "CDC_ICEBERG_CATALOG_URI"
"""Environment variable the project's Iceberg steps and tests read for a catalog database URL
(e.g. ``postgresql://postgres@127.0.0.1:5432/postgres``); unset means a SQLite file each."""


def check_catalog_uri(uri: str) -> None:
    """Check that SQLAlchemy can load the driver of ``uri`` (no connection is made).

    With SQLAlchemy 2.1, ``postgresql://`` and ``postgresql+psycopg://`` use psycopg 3 (the
    project's driver); other drivers (``+pg8000``, ``+asyncpg``) need their own module.
    """
    from sqlalchemy import create_engine
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        engine = create_engine(uri)
    except ModuleNotFoundError as exc:
        raise IcebergChangelogError(
            f"the catalog URI {redact_uri(uri)!r} needs the Python module {exc.name!r}, which "
            "is not installed. Fix: use 'postgresql+psycopg://user:password@host:port/db' "
            "(psycopg 3 is installed) or 'sqlite:///path/to/catalog.db'"
        ) from exc
    except (NoSuchModuleError, ArgumentError) as exc:
        raise IcebergChangelogError(
            f"the catalog URI {redact_uri(uri)!r} is not a SQLAlchemy URL SQLAlchemy can load "
            f"({exc}). Fix: use 'sqlite:///path/to/catalog.db' or "
            "'postgresql+psycopg://user:password@host:port/db'"
        ) from exc
    engine.dispose()


def redact_uri(uri: str) -> str:
    """``uri`` with the password (if any) replaced by ``***``, for messages and reports."""
    scheme, sep, rest = uri.partition("://")
    if not sep or "@" not in rest:
        return uri
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in credentials else uri


def check_warehouse(warehouse: str | os.PathLike[str]) -> Path:
    """The warehouse folder, resolved; NotADirectoryError naming the fix when it (or a folder
    above it) is an existing file."""
    folder = Path(warehouse).resolve()
    for path in (folder, *folder.parents):
        if path.exists():
            if not path.is_dir():
                raise NotADirectoryError(
                    f"{path} is a file, not a folder: an Iceberg warehouse is a folder (the "
                    "tables' data and metadata, and the SQLite catalog); give the path of a "
                    "new or existing folder"
                )
            break
    return folder


def open_catalog(
    warehouse: str | os.PathLike[str], *, uri: str | None = None, name: str = "cdc"
) -> SqlCatalog:
    """A pyiceberg SQL catalog with a local warehouse folder (created if missing).

    ``uri`` is any SQLAlchemy URL; by default a SQLite file ``catalog.db`` in the warehouse.
    For PostgreSQL use ``postgresql+psycopg://user:password@host:port/db`` (a libpq
    ``postgresql://`` URI works too). Several catalogs may share one database: pyiceberg
    keeps them apart by ``name``.
    """
    folder = check_warehouse(warehouse)
    folder.mkdir(parents=True, exist_ok=True)
    uri = uri or f"sqlite:///{folder / 'catalog.db'}"
    check_catalog_uri(uri)
    return SqlCatalog(name, uri=uri, warehouse=folder.as_uri())
