"""Command-line options and ini keys of the plugin, and how their values are resolved.

Precedence (documented in the README): command line > environment > ini > default.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pytest_cdc.errors import CdcUsageError

if TYPE_CHECKING:
    from cdc_support.deltalake.location import DeltaLocation

BACKENDS = ("auto", "native", "docker", "external")
BOOLEANS = "true or false (also yes/no, on/off, 1/0)"
EXTERNAL_ADDRESSES = {
    "postgres_dsn": (
        "--cdc-postgres-dsn",
        "URI",
        "PostgreSQL admin URI, postgresql://user:password@host:port/postgres",
    ),
    "kafka_bootstrap": ("--cdc-kafka-bootstrap", "HOST:PORT", "Kafka bootstrap servers"),
    "connect_url": ("--cdc-connect-url", "URL", "Kafka Connect REST URL, http://host:port"),
    "mysql_dsn": (
        "--cdc-mysql-dsn",
        "URI",
        "MySQL/MariaDB admin URI, mysql://user:password@host:port/ (optional)",
    ),
}
"""Endpoints field -> (option, metavar, help) of the external backend's single addresses."""


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
    group.addoption(
        "--cdc-delta-uri",
        action="store",
        dest="cdc_delta_uri",
        default=None,
        metavar="URI",
        help="where delta_location puts each test's Delta tables, e.g. s3://lake/cdc (default: "
        "ini cdc_delta_uri, env CDC_DELTA_URI, else a folder in the test's tmp_path).",
    )
    group.addoption(
        "--cdc-delta-storage-options",
        action="store",
        dest="cdc_delta_storage_options",
        default=None,
        metavar="JSON",
        help="delta-rs storage options for --cdc-delta-uri, a JSON object (default: ini "
        "cdc_delta_storage_options, env CDC_DELTA_STORAGE_OPTIONS, else none).",
    )
    group.addoption(
        "--cdc-iceberg-catalog-uri",
        action="store",
        dest="cdc_iceberg_catalog_uri",
        default=None,
        metavar="URL",
        help="SQLAlchemy URL of the database iceberg_warehouse keeps its catalogs in (default: "
        "ini cdc_iceberg_catalog_uri, env CDC_ICEBERG_CATALOG_URI, else a SQLite file per test).",
    )
    group.addoption(
        "--cdc-endpoints",
        action="store",
        dest="cdc_endpoints",
        default=None,
        metavar="FILE",
        help="with --cdc-backend=external: a JSON file of the stack's endpoints (a stack.json "
        "record of `cdc-spec up`, or Endpoints.to_json()) (default: ini cdc_endpoints, env "
        "CDC_ENDPOINTS, else the addresses below, else the stack `cdc-spec up` started).",
    )
    for name, (flag, metavar, what) in EXTERNAL_ADDRESSES.items():
        group.addoption(
            flag,
            action="store",
            dest=f"cdc_{name}",
            default=None,
            metavar=metavar,
            help=f"with --cdc-backend=external: {what} (default: ini cdc_{name}, env "
            f"CDC_{name.upper()}).",
        )
    parser.addini("cdc_backend", "default stack backend: " + "|".join(BACKENDS), default="")
    parser.addini("cdc_endpoints", "endpoints JSON file of an external stack", default="")
    for name, (_flag, _metavar, what) in EXTERNAL_ADDRESSES.items():
        parser.addini(f"cdc_{name}", f"external stack: {what}", default="")
    parser.addini("cdc_delta_uri", "where the Delta tables of the tests go", default="")
    parser.addini("cdc_delta_storage_options", "delta-rs storage options (JSON object)", default="")
    parser.addini("cdc_iceberg_catalog_uri", "SQLAlchemy URL of the Iceberg catalogs", default="")
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


@dataclass(frozen=True)
class ExternalSettings:
    """Where an external stack's endpoints come from: a file, single addresses (Endpoints
    field -> its setting, only those given), or neither (the stack `cdc-spec up` started)."""

    endpoints_file: Setting = Setting("", "default")
    addresses: dict[str, Setting] = field(default_factory=dict)

    def origin(self, name: str) -> str:
        """What set an address or the file, for messages: "--cdc-postgres-dsn", "env
        CDC_POSTGRES_DSN", "ini cdc_postgres_dsn" (``name``: an Endpoints field or "endpoints")."""
        setting = self.endpoints_file if name == "endpoints" else self.addresses[name]
        if setting.source == "command line":
            return EXTERNAL_ADDRESSES[name][0] if name in EXTERNAL_ADDRESSES else "--cdc-endpoints"
        return f"ini cdc_{name}" if setting.source == "ini" else setting.source


def resolve_external(config: pytest.Config) -> ExternalSettings:
    """The external backend's settings (read, not checked: the backend checks them when used);
    a relative ini path of the endpoints file is from rootdir."""
    endpoints = _resolve(config, "cdc_endpoints", "CDC_ENDPOINTS", "cdc_endpoints", "")
    if endpoints.source == "ini" and not Path(endpoints.value).is_absolute():
        endpoints = Setting(str(Path(config.rootpath) / endpoints.value), endpoints.source)
    addresses = {
        name: _resolve(config, f"cdc_{name}", f"CDC_{name.upper()}", f"cdc_{name}", "")
        for name in EXTERNAL_ADDRESSES
    }
    return ExternalSettings(
        endpoints, {name: setting for name, setting in addresses.items() if setting.value}
    )


def resolve_runtime_dir(config: pytest.Config) -> Setting:
    """Where the Java parts of the native stack are; relative ini paths are from rootdir."""
    setting = _resolve(config, "cdc_runtime_dir", "CDC_RUNTIME_DIR", "cdc_runtime_dir", "")
    if not setting.value:
        return Setting(str(default_runtime_dir()), "default")
    path = Path(setting.value)
    if not path.is_absolute():
        path = Path(config.rootpath) / path
    return Setting(str(path), setting.source)


@dataclass(frozen=True)
class Lakehouse:
    """Where the lakehouse fixtures write: a Delta URI with its storage options, and the
    database of the Iceberg catalogs (empty values: the test's tmp_path)."""

    delta_uri: Setting
    delta_storage_options: Setting
    iceberg_catalog_uri: Setting

    def delta_base(self) -> DeltaLocation | None:
        """The Delta location below which each test writes; None for tmp_path."""
        if not self.delta_uri.value:
            return None
        from cdc_support.deltalake.location import DeltaLocation

        try:
            return DeltaLocation.parse(self.delta_uri.value, self.delta_storage_options.value)
        except ValueError as exc:
            option = _named(_DELTA_OPTIONS, self.delta_storage_options)
            raise CdcUsageError(f"{option} {exc}") from None

    def describe(self) -> str:
        """The report header line; storage options by name, the catalog's password hidden."""
        options = self.delta_storage_options
        base = self.delta_base()
        names = ", ".join(sorted(base.storage_options)) if base else ""
        catalog = self.iceberg_catalog_uri.value
        if catalog:
            from cdc_support.iceberg.catalog import redact_uri

            catalog = redact_uri(catalog)
        return (
            f"cdc: lakehouse delta_uri={self.delta_uri.value or _TMP_FOLDER} "
            f"(from {self.delta_uri.source}), "
            f"delta_storage_options={names or 'none'} (from {options.source}), "
            f"iceberg_catalog_uri={catalog or _TMP_SQLITE} "
            f"(from {self.iceberg_catalog_uri.source})"
        )


_DELTA_OPTIONS = "--cdc-delta-storage-options"
_TMP_FOLDER = "a folder in each test's tmp_path"
_TMP_SQLITE = "a SQLite file in each test's tmp_path"


def _named(option: str, setting: Setting) -> str:
    return f"{option} (from {setting.source})"


def resolve_lakehouse(config: pytest.Config) -> Lakehouse:
    """The lakehouse settings, checked: a usage error naming the option for a bad value."""
    lakehouse = Lakehouse(
        delta_uri=_resolve(config, "cdc_delta_uri", "CDC_DELTA_URI", "cdc_delta_uri", ""),
        delta_storage_options=_resolve(
            config,
            "cdc_delta_storage_options",
            "CDC_DELTA_STORAGE_OPTIONS",
            "cdc_delta_storage_options",
            "",
        ),
        iceberg_catalog_uri=_resolve(
            config,
            "cdc_iceberg_catalog_uri",
            "CDC_ICEBERG_CATALOG_URI",
            "cdc_iceberg_catalog_uri",
            "",
        ),
    )
    if lakehouse.delta_storage_options.value and not lakehouse.delta_uri.value:
        raise CdcUsageError(
            f"{_named(_DELTA_OPTIONS, lakehouse.delta_storage_options)} needs a Delta URI: set "
            "--cdc-delta-uri, env CDC_DELTA_URI or ini cdc_delta_uri"
        )
    lakehouse.delta_base()
    if lakehouse.iceberg_catalog_uri.value:
        from cdc_support.iceberg.catalog import check_catalog_uri
        from cdc_support.iceberg.errors import IcebergChangelogError

        try:
            check_catalog_uri(lakehouse.iceberg_catalog_uri.value)
        except IcebergChangelogError as exc:
            option = _named("--cdc-iceberg-catalog-uri", lakehouse.iceberg_catalog_uri)
            raise CdcUsageError(f"{option}: {exc}") from None
    return lakehouse


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
