"""The PostgreSQL connection type, named once so step modules can annotate without the driver."""

from __future__ import annotations

from typing import Any

import psycopg

__all__ = ["PgConnection"]


class PgConnection(psycopg.Connection[Any]):
    """A psycopg connection (what ``pg_conn`` and ``SourceTable.conn`` hold) whose repr names
    its database: the report shows step arguments by their repr.

    ``PgConnection.connect(dsn, autocommit=True)`` opens one (psycopg's ``connect`` makes
    instances of the class it is called on).
    """

    def __repr__(self) -> str:
        info = self.info
        return f"PgConnection({info.dbname} on {info.host}:{info.port})"
