"""The fault matrix of a feature file under features/faults: every fault scenario's row, kept
per feature file (its scenarios run in order on one pytest-xdist worker, the matrix scenario
last), and the sentence that attaches the whole matrix. The rows are added by steps/faults.py.
"""

from __future__ import annotations

import pytest
from pytest_bdd import then

from cdc_support.faults.matrix import FaultRow, matrix_html, matrix_markdown
from pytest_cdc.report import evidence


@pytest.fixture(scope="session")
def fault_rows_by_feature() -> dict[str, list[FaultRow]]:
    """Feature file -> the rows of its fault scenarios that ran in this session."""
    return {}


@pytest.fixture
def fault_rows(
    fault_rows_by_feature: dict[str, list[FaultRow]], request: pytest.FixtureRequest
) -> list[FaultRow]:
    """The rows of this feature file's fault scenarios so far, for its matrix."""
    return fault_rows_by_feature.setdefault(str(request.node.path), [])


@then("the matrix of every fault scenario of this feature is attached, and every row passed")
def fault_matrix(fault_rows: list[FaultRow]) -> None:
    """The whole matrix, one cell per fault and approach (a scenario that failed is red)."""
    if not fault_rows:
        pytest.skip("no fault scenario of this feature ran before this one in this session")
    evidence.attach_html("fault matrix", matrix_html(fault_rows))
    evidence.attach_text("fault matrix (markdown)", matrix_markdown(fault_rows))
    failed = [f"{row.fault} under {row.approach}" for row in fault_rows if not row.passed]
    assert not failed, f"{len(failed)} of {len(fault_rows)} rows failed: {'; '.join(failed)}"
