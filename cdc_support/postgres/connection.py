"""The PostgreSQL connection type, named once so step modules can annotate without the driver."""

from __future__ import annotations

from typing import Any

import psycopg

__all__ = ["PgConnection"]

PgConnection = psycopg.Connection[Any]
"""A psycopg connection (what ``pg_conn`` and ``SourceTable.conn`` hold)."""
