"""Command-line options and ini keys of the plugin, and how their values are resolved.

Precedence (documented in the README): command line > environment > ini > default.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from pytest_cdc.errors import CdcUsageError

BACKENDS = ("auto", "native", "docker", "external")
BOOLEANS = "true or false (also yes/no, on/off, 1/0)"


@dataclass(frozen=True)
class Setting:
    """A resolved setting and where its value came from (for the report header)."""

    value: str
    source: str  # "command line", "env CDC_BACKEND", "ini", "default"


def add_options(parser: pytest.Parser) -> None:
    """Register the `cdc` option group and its ini keys."""
    group = parser.getgroup("cdc", "cdc-spec: change data capture stack")
    group.addoption(
        "--cdc-backend",
        action="store",
        dest="cdc_backend",
        default=None,
        metavar="NAME",
        help=f"how to run the stack: {'|'.join(BACKENDS)} "
        "(default: ini cdc_backend, env CDC_BACKEND, else auto).",
    )
    group.addoption(
        "--cdc-keep-stack",
        action="store_true",
        dest="cdc_keep_stack",
        default=False,
        help="leave the stack running after the session and print its endpoints.",
    )
    group.addoption(
        "--cdc-runtime-dir",
        action="store",
        dest="cdc_runtime_dir",
        default=None,
        metavar="DIR",
        help="folder with the Kafka/Connect/Debezium jars (default: ini cdc_runtime_dir, "
        "env CDC_RUNTIME_DIR, else runtime/dist of this project).",
    )
    parser.addini("cdc_backend", "default stack backend: " + "|".join(BACKENDS), default="")
    parser.addini("cdc_runtime_dir", "folder with the Kafka/Connect/Debezium jars", default="")
    parser.addini(
        "cdc_collect_features",
        "collect *.feature files as pytest-bdd scenarios (no binder module needed)",
        type="bool",
        default=False,
    )


def _resolve(config: pytest.Config, option: str, env: str, ini: str, default: str) -> Setting:
    value = config.getoption(option)
    if value:
        return Setting(str(value), "command line")
    if os.environ.get(env):
        return Setting(os.environ[env], f"env {env}")
    ini_value = config.getini(ini)
    if ini_value:
        return Setting(str(ini_value), "ini")
    return Setting(default, "default")


def resolve_backend(config: pytest.Config) -> Setting:
    """The backend to use, validated against the allowed names."""
    return check_backend(_resolve(config, "cdc_backend", "CDC_BACKEND", "cdc_backend", "auto"))


def check_backend(setting: Setting) -> Setting:
    """The setting if it names a backend; else a usage error listing the allowed names."""
    if setting.value not in BACKENDS:
        raise CdcUsageError(
            f"cdc backend {setting.value!r} (from {setting.source}) is not one of: "
            f"{', '.join(BACKENDS)}"
        )
    return setting


def resolve_runtime_dir(config: pytest.Config) -> Setting:
    """Where the Java parts of the native stack are; relative ini paths are from rootdir."""
    setting = _resolve(config, "cdc_runtime_dir", "CDC_RUNTIME_DIR", "cdc_runtime_dir", "")
    if not setting.value:
        return Setting(str(default_runtime_dir()), "default")
    path = Path(setting.value)
    if not path.is_absolute():
        path = Path(config.rootpath) / path
    return Setting(str(path), setting.source)


def resolve_collect_features(config: pytest.Config) -> bool:
    """The `cdc_collect_features` ini key, or a usage error naming the key and allowed values."""
    try:
        return bool(config.getini("cdc_collect_features"))
    except (ValueError, pytest.UsageError) as exc:
        raise CdcUsageError(
            f"ini key cdc_collect_features is not a boolean ({exc}): set it to {BOOLEANS}."
        ) from None


def default_runtime_dir() -> Path:
    """runtime/dist next to this package (an editable install of the cdc-spec repo)."""
    return Path(__file__).resolve().parent.parent / "runtime" / "dist"
