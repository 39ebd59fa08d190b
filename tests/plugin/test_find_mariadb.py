"""Finding the MariaDB binaries for the native backend, and the message when they are missing."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest

from pytest_cdc.errors import RuntimeMissing
from pytest_cdc.stack.native import mariadb
from pytest_cdc.stack.native.mariadb import find_mariadb, mariadb_version


def _script(folder: Path, name: str, body: str = "exit 0") -> Path:
    path = folder / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def no_debian_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A machine without mariadb-server: nothing on PATH, no Debian folders to search."""
    empty_path = tmp_path / "path"
    empty_path.mkdir()
    monkeypatch.setenv("PATH", str(empty_path))
    monkeypatch.setattr(mariadb, "SYSTEM_BINDIRS", ())
    bindir = tmp_path / "bindir"
    bindir.mkdir()
    monkeypatch.setenv("CDC_MARIADB_BINDIR", str(bindir))
    return bindir


def test_missing_binaries_name_make_setup(no_debian_package: Path) -> None:
    with pytest.raises(RuntimeMissing) as info:
        find_mariadb()
    message = str(info.value)
    assert "make setup" in message
    assert "mariadbd" in message and "mariadb-install-db" in message
    assert "CDC_MARIADB_BINDIR" in message


def test_half_an_installation_is_missing_too(no_debian_package: Path) -> None:
    _script(no_debian_package, "mariadbd")
    with pytest.raises(RuntimeMissing, match="make setup"):
        find_mariadb()


def test_bindir_from_the_environment_wins(no_debian_package: Path) -> None:
    server = _script(no_debian_package, "mariadbd")
    install = _script(no_debian_package, "mariadb-install-db")
    assert find_mariadb() == (server, install)


def test_bindir_wins_over_the_debian_package(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    server = _script(tmp_path, "mariadbd")
    install = _script(tmp_path, "mariadb-install-db")
    monkeypatch.setenv("CDC_MARIADB_BINDIR", str(tmp_path))
    assert find_mariadb() == (server, install)


def test_binaries_on_path_are_found(no_debian_package: Path, tmp_path: Path) -> None:
    on_path = tmp_path / "path"
    server = _script(on_path, "mariadbd")
    install = _script(on_path, "mariadb-install-db")
    assert find_mariadb() == (server, install)


def test_version_is_read_from_the_server_binary(tmp_path: Path) -> None:
    banner = "mariadbd  Ver 10.11.19-MariaDB-0+deb12u1 for debian-linux-gnu on x86_64 (Debian 12)"
    assert mariadb_version(_script(tmp_path, "mariadbd", f"echo '{banner}'")) == "10.11.19"
    assert mariadb_version(_script(tmp_path, "broken", "exit 3")) == "?"
    assert mariadb_version(tmp_path / "absent") == "?"


def test_version_of_the_installed_server() -> None:
    """make setup installs mariadb-server; if it is missing, RuntimeMissing names the fix."""
    server, _ = find_mariadb()
    assert re.fullmatch(r"\d+\.\d+\.\d+", mariadb_version(server))
