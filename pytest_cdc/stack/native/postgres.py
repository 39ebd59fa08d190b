"""A throwaway PostgreSQL server with logical decoding enabled, SCRAM passwords, two roles.

* the superuser ``postgres`` (the admin DSN): creates databases, tables and publications;
* the replication role ``cdc_replication`` (LOGIN REPLICATION, nothing else): what Debezium
  and the logical decoding consumer connect as; it gets SELECT on the tables it captures.

Both have passwords generated per stack (SCRAM-SHA-256); pg_hba.conf accepts TCP from
127.0.0.1 only, with a password (no ``trust``, no Unix-socket logins).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
from psycopg import sql

from pytest_cdc.errors import RuntimeMissing
from pytest_cdc.process import ServiceProcess
from pytest_cdc.stack.probes import SqlProbe

SUPERUSER = "postgres"
REPLICATION_ROLE = "cdc_replication"
PG_HBA = (
    "# written by cdc-spec: TCP from 127.0.0.1 only, SCRAM passwords, no trust\n"
    "host all all 127.0.0.1/32 scram-sha-256\n"
)
"""Logical replication connections (replication=database) match the `all` database line."""


def init_datadir(bindir: Path, datadir: Path, password: str) -> None:
    """initdb a fresh cluster (as the postgres user when we are root) with a SCRAM superuser."""
    kwargs = run_as_postgres_kwargs()
    pwfile = datadir.parent / "pg-superuser.pw"
    if kwargs:
        datadir.parent.chmod(0o755)
        datadir.mkdir(mode=0o700)
        shutil.chown(datadir, "postgres", "postgres")
    _write_private(pwfile, password + "\n", owner="postgres" if kwargs else None)
    cmd = [
        str(bindir / "initdb"),
        "-D",
        str(datadir),
        "-U",
        SUPERUSER,
        "--auth=scram-sha-256",
        f"--pwfile={pwfile}",
        "-E",
        "UTF8",
        "--locale=C",
        "--no-sync",
    ]
    try:
        subprocess.run(cmd, check=True, capture_output=True, text=True, **kwargs)
    except KeyError as exc:  # no such user
        raise RuntimeMissing(
            "no `postgres` system user to run PostgreSQL as (root is refused): "
            "run `make setup` (the Debian package postgresql creates it)."
        ) from exc
    except subprocess.CalledProcessError as exc:
        raise RuntimeMissing(f"initdb failed in {datadir}:\n{exc.stderr or exc.stdout}") from exc
    finally:
        pwfile.unlink(missing_ok=True)
    (datadir / "pg_hba.conf").write_text(PG_HBA)


def _write_private(path: Path, text: str, *, owner: str | None = None) -> None:
    """Write a file only its owner can read (mode 0600 from the start)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    if owner:
        shutil.chown(path, owner, owner)


def run_as_postgres_kwargs() -> dict[str, Any]:
    """Popen kwargs to run PostgreSQL as `postgres` when we are root (initdb refuses root)."""
    if os.geteuid() != 0:
        return {}
    return {"user": "postgres", "group": "postgres", "extra_groups": []}


def postgres_service(
    bindir: Path, workdir: Path, port: int, *, password: str, timeout: float
) -> ServiceProcess:
    """The server process; `start()` it. wal_level=logical for Debezium and logical decoding."""
    datadir = workdir / "pgdata"
    if not datadir.exists():
        init_datadir(bindir, datadir, password)
    sockdir = workdir / "pgsock"
    sockdir.mkdir(exist_ok=True)
    kwargs = run_as_postgres_kwargs()
    if kwargs:
        shutil.chown(sockdir, "postgres", "postgres")
    settings = {
        "listen_addresses": "127.0.0.1",
        "port": str(port),
        "unix_socket_directories": str(sockdir),
        "password_encryption": "scram-sha-256",
        "wal_level": "logical",
        "max_replication_slots": "20",
        "max_wal_senders": "20",
        "max_connections": "200",
        "fsync": "off",  # throwaway data; NOT synchronous_commit=off (decoding needs flushed WAL)
        "full_page_writes": "off",
        "shared_buffers": "128MB",
        "log_min_messages": "warning",
    }
    command = [str(bindir / "postgres"), "-D", str(datadir)]
    for key, value in settings.items():
        command += ["-c", f"{key}={value}"]
    ready = SqlProbe(postgres_dsn(port, password=password))
    return ServiceProcess(
        "postgres",
        command,
        log_path=workdir / "logs" / "postgres.log",
        probe=lambda _: ready.check(),
        awaited=ready.awaited + " (with its password)",
        timeout=timeout,
        stop_signal=signal.SIGINT,  # fast shutdown
        popen_kwargs={**kwargs, "cwd": str(workdir)},
        env={"LC_ALL": "C", "PGTZ": "UTC", "TZ": os.environ.get("TZ", "UTC")},
        hint="see the log above; a port clash shows as 'could not bind'.",
    )


def create_replication_role(admin_dsn: str, password: str, role: str = REPLICATION_ROLE) -> None:
    """The role CDC clients connect as: LOGIN REPLICATION (creates and reads slots), no more.

    SELECT on the captured tables is granted per scenario, when a connector is created.
    """
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL(
                "CREATE ROLE {} LOGIN REPLICATION NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}"
            ).format(sql.Identifier(role), sql.Literal(password))
        )


def postgres_dsn(
    port: int, dbname: str = "postgres", *, user: str = SUPERUSER, password: str = ""
) -> str:
    """libpq URI for the throwaway server (without the password when none is given)."""
    auth = quote(user, safe="") + (":" + quote(password, safe="") if password else "")
    return f"postgresql://{auth}@127.0.0.1:{port}/{dbname}"
