"""Under `pytest -n` a feature file's scenarios run on one worker, in file order (the last
scenario of features/postgres/approaches.feature reads what the ones before it recorded in
that worker's session); an explicit `--dist` is left as given."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

CONFTEST = """
import os
from pytest_bdd import given, parsers

@given(parsers.parse("scenario {n:d} of {feature} runs"))
def runs(n, feature):
    with open("ran.txt", "a") as out:
        out.write(f"{feature} {os.environ['PYTEST_XDIST_WORKER']} {n}\\n")
"""


def _scenarios(feature: str) -> str:
    steps = "".join(
        f"  Scenario: Step {n}\n    Given scenario {n} of {feature} runs\n" for n in range(1, 9)
    )
    return f"Feature: {feature}\n{steps}"


def _run(pytester: pytest.Pytester, *args: str) -> dict[str, list[tuple[str, int]]]:
    pytester.makeini("[pytest]\ncdc_collect_features = true\n")
    pytester.makefile(".feature", first=_scenarios("first"), second=_scenarios("second"))
    pytester.makeconftest(CONFTEST)
    result = pytester.runpytest_subprocess("-n", "2", *args, "first.feature", "second.feature")
    result.assert_outcomes(passed=16)
    ran: dict[str, list[tuple[str, int]]] = {}
    for line in (pytester.path / "ran.txt").read_text().splitlines():
        feature, worker, n = line.split()
        ran.setdefault(feature, []).append((worker, int(n)))
    return ran


def test_each_feature_runs_on_one_worker_in_file_order(pytester: pytest.Pytester) -> None:
    ran = _run(pytester)
    for feature, runs in ran.items():
        assert len({worker for worker, _ in runs}) == 1, (feature, runs)
        assert [n for _, n in runs] == list(range(1, 9)), (feature, runs)


def test_an_explicit_dist_mode_is_kept(pytester: pytest.Pytester) -> None:
    ran = _run(pytester, "--dist", "load")
    assert len({worker for runs in ran.values() for worker, _ in runs}) == 2
    assert any(len({worker for worker, _ in runs}) == 2 for runs in ran.values()), ran
