"""A throwaway MariaDB server with a row-based binlog, a root password and a CDC user.

Binlog settings CDC needs (Debezium checks the first two at start and refuses otherwise):
ROW format, FULL row image (every column before and after), FULL row metadata (column names
in each table-map event, so a binlog reader needs no schema queries), a server id, and UTC as
the server time zone so TIMESTAMP values read the same through every client.

Accounts: ``root`` (the admin DSN; a password generated per stack replaces mariadb-install-db's
password-less root accounts) and ``cdc`` (what Debezium and the binlog reader connect as).
Both are (re)set by an init file the server runs at every start, written 0600 in its home.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from urllib.parse import quote

from pytest_cdc.errors import RuntimeMissing
from pytest_cdc.process import ServiceProcess
from pytest_cdc.stack.probes import SqlProbe

ADMIN_USER = "root"
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
CDC_USER = "cdc"
CDC_GRANTS = "SELECT, RELOAD, SHOW DATABASES, REPLICATION SLAVE, REPLICATION CLIENT"
"""What Debezium's MySQL/MariaDB connectors document as needed; nothing that can write."""

SETUP_HINT = "run `make setup` (installs the Debian package mariadb-server)"
SYSTEM_BINDIRS = ("/usr/sbin", "/usr/bin")
"""Where Debian's mariadb-server puts its binaries; searched after CDC_MARIADB_BINDIR."""


def find_mariadb() -> tuple[Path, Path]:
    """Paths of ``mariadbd`` and ``mariadb-install-db`` (env CDC_MARIADB_BINDIR wins)."""
    folders = [os.environ.get("CDC_MARIADB_BINDIR", ""), *SYSTEM_BINDIRS]
    server = _first(folders, "mariadbd") or shutil.which("mariadbd")
    install = _first(folders, "mariadb-install-db") or shutil.which("mariadb-install-db")
    if not server or not install:
        raise RuntimeMissing(
            f"MariaDB server binaries (mariadbd, mariadb-install-db) not found: {SETUP_HINT}, "
            "or set CDC_MARIADB_BINDIR."
        )
    return Path(server), Path(install)


def _first(folders: list[str], name: str) -> str | None:
    for folder in folders:
        if folder and (Path(folder) / name).exists():
            return str(Path(folder) / name)
    return None


def mariadb_version(server: Path) -> str:
    """``10.11.19`` from ``mariadbd --version`` ("?" when it cannot be read)."""
    try:
        out = subprocess.run(
            [str(server), "--version"], capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return "?"
    for word in out.split():
        if word[:1].isdigit() and "-MariaDB" in word:
            return word.split("-")[0]
    return out.strip()


def _as_mysql_user() -> bool:
    return os.geteuid() == 0


def init_datadir(install_db: Path, home: Path) -> Path:
    """mariadb-install-db a fresh data directory under ``home`` (owned by `mysql` as root)."""
    datadir = home / "data"
    cmd = [
        str(install_db),
        "--no-defaults",
        f"--datadir={datadir}",
        "--auth-root-authentication-method=normal",
        "--skip-test-db",
        "--skip-name-resolve",
    ]
    if _as_mysql_user():
        cmd.append("--user=mysql")
    try:
        subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=home)
    except subprocess.CalledProcessError as exc:
        raise RuntimeMissing(
            f"mariadb-install-db failed in {datadir}:\n{exc.stderr or exc.stdout}"
        ) from exc
    return datadir


def mariadb_service(
    workdir: Path, port: int, *, root_password: str, cdc_password: str, timeout: float
) -> ServiceProcess:
    """The server process (``start()`` it); its init file sets both accounts at every start."""
    server, install_db = find_mariadb()
    home = workdir / "mariadb"
    home.mkdir(exist_ok=True)
    if _as_mysql_user():
        workdir.chmod(0o755)
        shutil.chown(home, "mysql", "mysql")
    datadir = home / "data"
    if not datadir.exists():
        init_datadir(install_db, home)
    init_file = home / "accounts.sql"
    _write_private(init_file, accounts_sql(root_password, cdc_password))
    if _as_mysql_user():
        shutil.chown(init_file, "mysql", "mysql")
    command = [
        str(server),
        "--no-defaults",
        f"--datadir={datadir}",
        f"--port={port}",
        "--bind-address=127.0.0.1",
        f"--socket={home / 'mariadb.sock'}",
        f"--pid-file={home / 'mariadb.pid'}",
        f"--log-bin={datadir / 'binlog'}",
        "--binlog-format=ROW",
        "--binlog-row-image=FULL",
        "--binlog-row-metadata=FULL",
        "--server-id=1",
        "--default-time-zone=+00:00",
        "--skip-name-resolve",
        "--innodb-buffer-pool-size=64M",
        "--innodb-flush-log-at-trx-commit=2",  # throwaway data: no fsync per commit
        "--sync-binlog=0",
        f"--init-file={init_file}",
    ]
    if _as_mysql_user():
        command.append("--user=mysql")

    ready = SqlProbe(mysql_dsn(port, ADMIN_USER, root_password))
    return ServiceProcess(
        "mariadb",
        command,
        log_path=workdir / "logs" / "mariadb.log",
        probe=lambda _: ready.check(),
        awaited=ready.awaited + " (with its password)",
        timeout=timeout,
        popen_kwargs={"cwd": str(home)},
        env={"TZ": "UTC"},
        hint="see the log above; a port clash shows as 'Can't start server: Bind on TCP/IP port'.",
    )


def accounts_sql(root_password: str, cdc_password: str) -> str:
    """The init file: root gets its password (other root accounts are dropped), cdc its grants.

    Not binlogged (``sql_log_bin=0``): account statements stay out of what CDC clients read.
    """
    lines = ["SET sql_log_bin = 0;"]
    lines += [
        f"ALTER USER IF EXISTS '{ADMIN_USER}'@'{host}' IDENTIFIED BY '{root_password}';"
        for host in LOCAL_HOSTS
    ]
    hosts = ", ".join(f"'{h}'" for h in LOCAL_HOSTS)
    lines.append(
        f"DELETE FROM mysql.global_priv WHERE User = '' OR (User = '{ADMIN_USER}' "
        f"AND Host NOT IN ({hosts}));"
    )
    lines.append("FLUSH PRIVILEGES;")
    for host in ("127.0.0.1", "localhost"):
        lines.append(f"CREATE USER IF NOT EXISTS '{CDC_USER}'@'{host}';")
        lines.append(f"ALTER USER '{CDC_USER}'@'{host}' IDENTIFIED BY '{cdc_password}';")
        lines.append(f"GRANT {CDC_GRANTS} ON *.* TO '{CDC_USER}'@'{host}';")
    return "\n".join(lines) + "\n"


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (mode 0600 from the start)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def mysql_dsn(port: int, user: str = ADMIN_USER, password: str = "") -> str:
    """``mysql://user[:password]@127.0.0.1:port/`` for the throwaway server."""
    auth = quote(user, safe="") + (":" + quote(password, safe="") if password else "")
    return f"mysql://{auth}@127.0.0.1:{port}/"
