"""Authentication on the stack's real servers: passwords are required, roles are least-privilege."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import psycopg
import pymysql
import pytest

from cdc_support.mysql.source import parse_dsn
from cdc_support.postgres.privileges import role_attributes


def _pg_refuses(dsn: str, **overrides: str) -> str:
    with pytest.raises(psycopg.OperationalError) as refused:
        psycopg.connect(psycopg.conninfo.make_conninfo(dsn, **overrides), connect_timeout=5)
    return str(refused.value)


def test_postgres_refuses_a_wrong_or_missing_password(cdc_stack) -> None:
    ep = cdc_stack.endpoints
    assert "password authentication failed" in _pg_refuses(ep.postgres_dsn, password="wrong")
    assert "no password supplied" in _pg_refuses(ep.postgres_dsn, password="")
    assert "password authentication failed" in _pg_refuses(ep.postgres_cdc_dsn, password="x")
    assert "no password supplied" in _pg_refuses(ep.postgres_cdc_dsn, password="")
    with psycopg.connect(ep.postgres_dsn) as conn:
        assert conn.execute("SHOW password_encryption").fetchone() == ("scram-sha-256",)
        methods = conn.execute(
            "SELECT DISTINCT type, address, auth_method FROM pg_hba_file_rules"
        ).fetchall()
    assert methods == [("host", "127.0.0.1", "scram-sha-256")], methods


def test_the_replication_role_only_logs_in_and_replicates(cdc_stack) -> None:
    ep = cdc_stack.endpoints
    with psycopg.connect(ep.postgres_dsn) as admin:
        attributes = role_attributes(admin, ep.postgres_cdc_user)
    assert attributes == {
        "superuser": False,
        "replication": True,
        "login": True,
        "createdb": False,
        "createrole": False,
        "bypassrls": False,
    }
    with psycopg.connect(ep.postgres_cdc_dsn) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (ep.postgres_cdc_user,)


def _mysql_refuses(**kwargs: object) -> str:
    with pytest.raises(pymysql.err.OperationalError) as refused:
        pymysql.connect(connect_timeout=5, **kwargs)  # type: ignore[arg-type]
    return str(refused.value)


def test_mariadb_refuses_root_and_cdc_without_their_passwords(cdc_stack) -> None:
    ep = cdc_stack.endpoints
    for address in (parse_dsn(ep.mysql_dsn), parse_dsn(ep.mysql_cdc_dsn)):
        assert address.password, f"{address!r} has no password"
        for wrong in ("", "wrong"):
            kwargs = {**address.connect_kwargs(), "password": wrong}
            assert "Access denied" in _mysql_refuses(**kwargs)
        pymysql.connect(**address.connect_kwargs()).close()


def test_credentials_file_is_private_and_holds_the_passwords(cdc_stack) -> None:
    ep = cdc_stack.endpoints
    path = Path(ep.credentials_file)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    saved = json.loads(path.read_text())
    assert saved["postgres_dsn"] == ep.postgres_dsn
    assert saved["postgres_cdc_password"] == ep.postgres_cdc_password
    assert saved["mysql_dsn"] == ep.mysql_dsn
    assert saved["mysql_cdc_password"] == ep.mysql_cdc_password
