"""A throwaway PostgreSQL server with logical decoding enabled."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import psycopg

from pytest_cdc.errors import RuntimeMissing
from pytest_cdc.native.process import ServiceProcess, run_as_postgres_kwargs

SUPERUSER = "postgres"


def init_datadir(bindir: Path, datadir: Path) -> None:
    """initdb a fresh cluster (as the postgres user when we are root)."""
    kwargs = run_as_postgres_kwargs()
    if kwargs:
        datadir.parent.chmod(0o755)
        datadir.mkdir(mode=0o700)
        shutil.chown(datadir, "postgres", "postgres")
    cmd = [
        str(bindir / "initdb"),
        "-D",
        str(datadir),
        "-U",
        SUPERUSER,
        "-A",
        "trust",
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


def postgres_service(bindir: Path, workdir: Path, port: int, *, timeout: float) -> ServiceProcess:
    """The server process; `start()` it. wal_level=logical for Debezium and logical decoding."""
    datadir = workdir / "pgdata"
    if not datadir.exists():
        init_datadir(bindir, datadir)
    sockdir = workdir / "pgsock"
    sockdir.mkdir(exist_ok=True)
    kwargs = run_as_postgres_kwargs()
    if kwargs:
        shutil.chown(sockdir, "postgres", "postgres")
    settings = {
        "listen_addresses": "127.0.0.1",
        "port": str(port),
        "unix_socket_directories": str(sockdir),
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
    dsn = postgres_dsn(port)

    def probe(_: ServiceProcess) -> str | None:
        with psycopg.connect(dsn, connect_timeout=2):
            return None

    return ServiceProcess(
        "postgres",
        command,
        log_path=workdir / "postgres.log",
        probe=probe,
        awaited=f"a connection to {dsn}",
        timeout=timeout,
        stop_signal=signal.SIGINT,  # fast shutdown
        popen_kwargs={**kwargs, "cwd": str(workdir)},
        env={"LC_ALL": "C", "PGTZ": "UTC", "TZ": os.environ.get("TZ", "UTC")},
        hint="see the log above; a port clash shows as 'could not bind'.",
    )


def postgres_dsn(port: int, dbname: str = "postgres") -> str:
    """libpq URI for the throwaway server."""
    return f"postgresql://{SUPERUSER}@127.0.0.1:{port}/{dbname}"
