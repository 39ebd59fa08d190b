"""What the Delta Lake Change Data Feed steps attach to the report (no step definitions here)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from cdc_support.deltalake import (
    DeltaCommit,
    DeltaLocation,
    GeneratedDeltaTable,
    Handled,
    commit_actions,
    commit_operation,
    sorted_change_rows,
)
from pytest_cdc.report import evidence


def _log_name(version: int, actions: Sequence[dict[str, Any]]) -> str:
    return f"_delta_log/{version:020d}.json ({commit_operation(actions)})"


def attach_log_entries(location: DeltaLocation, versions: Iterable[int]) -> None:
    """Attach the _delta_log entry (JSON) of each version."""
    for version in versions:
        actions = commit_actions(location, version)
        evidence.attach_json(_log_name(version, actions), actions)


def attach_commit(
    table: GeneratedDeltaTable, commit: DeltaCommit, attached: set[int]
) -> list[dict[str, Any]]:
    """Attach the change rows of one commit (HTML) and its _delta_log entry (JSON), once."""
    actions = commit_actions(table.location, commit.version)
    if commit.version in attached:
        return actions
    attached.add(commit.version)
    rows = sorted_change_rows(table.location, table.key, commit.version)
    title = f"change rows of version {commit.version} ({commit_operation(actions)}, {commit.kind})"
    evidence.attach_html(title, evidence.table_html(title, rows or [{"(no rows)": ""}]))
    evidence.attach_json(_log_name(commit.version, actions), actions)
    return actions


def attach_commits(
    table: GeneratedDeltaTable, commits: Sequence[DeltaCommit], attached: set[int]
) -> None:
    """Attach each commit's change rows and log entry (see :func:`attach_commit`)."""
    for commit in commits:
        attach_commit(table, commit, attached)


def attach_workload(commits: Sequence[DeltaCommit]) -> None:
    """Attach the version, kind and keys of each generated commit."""
    evidence.attach_json(
        f"workload: {len(commits)} commits",
        [
            {"version": c.version, "kind": c.kind, "keys": [list(k) for k in c.keys]}
            for c in commits
        ],
    )


def attach_handled(title: str, handled: Handled) -> None:
    """Attach one row per handled batch: its versions, event counts and checkpoint after it."""
    rows = handled.summary_rows()
    evidence.attach_html(title, evidence.table_html(title, rows or [{"(no batch)": ""}]))
