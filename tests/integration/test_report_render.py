"""The single-file report shows HTML attachments in full when opened from disk (issue 11/10).

Builds a real report (Allure 3 CLI + ``pytest_cdc.report``) from a small results directory whose
one step attaches the PostgreSQL approaches comparison table (made by the real
``comparison_table_html`` from sample measurements) and a per-key diff, opens ``index.html``
from ``file://`` in headless Chromium and measures the attachment's frame in the three places
the viewer shows it: inline in the steps, the Attachments tab and the full-screen view. The
frame must be at least as tall as its content laid out at the frame's width ("natural
height"), measured on the very HTML the viewer put in the frame; the viewer alone leaves it at
the browser's default 150 px.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from headless_chromium import Chromium

from cdc_support.checks.integrity import diff_by_key
from cdc_support.events import ChangeEvent
from cdc_support.postgres.measure import (
    RULES,
    ApproachOutcomes,
    WorkloadRun,
    comparison_table_html,
)
from cdc_support.waiting import wait_until
from cdc_support.workload import Operation
from pytest_cdc.report.html import build_report

REPO_ROOT = Path(__file__).resolve().parents[2]
TABLE = "comparison of the approaches"
DIFF = "per-key diff"
DEFAULT_IFRAME_HEIGHT = 150

# JavaScript expressions: the attachment row whose header names {name}; the frame in {row};
# the frame of the full-screen view.
_ROW = (
    "[...document.querySelectorAll('[data-testid=test-result-attachment]')].find(r => r"
    ".querySelector('[data-testid=test-result-attachment-header]').textContent.includes({name}))"
)
_FRAME = "({row}).querySelector('iframe')"
_MODAL_FRAME = "document.querySelector('[class*=modal] iframe')"

# Lays the HTML the viewer loaded into `frame` (its blob: src) out in a scratch srcdoc frame of
# the same width, and returns [rendered frame height, natural content height, frame width].
_MEASURE = """(async () => {{
  const frame = {frame};
  if (!frame) return null;
  const html = await (await fetch(frame.getAttribute('src'))).text();
  const width = frame.clientWidth;
  const probe = document.createElement('iframe');
  probe.style.cssText = `position:absolute;left:-20000px;top:0;border:0;width:${{width}}px;`
    + 'height:20000px';
  const loaded = new Promise((resolve) => probe.addEventListener('load', resolve));
  probe.srcdoc = html;
  document.body.appendChild(probe);
  await loaded;
  const natural = probe.contentDocument.documentElement.getBoundingClientRect().height;
  probe.remove();
  return [frame.getBoundingClientRect().height, Math.ceil(natural), width];
}})()"""


def _sample_comparison_html() -> str:
    """The real comparison table, for a baseline and the four approaches on 20 inserts."""

    def event(key: int, lag: float) -> ChangeEvent:
        return ChangeEvent("c", (key,), None, {"id": key}, {}, 100.0, 100.0 + lag)

    ops = [Operation("insert", "customers", (k,), {"id": k}) for k in range(1, 21)]
    runs = [WorkloadRun("none (baseline)", ops, [], 1000, 20, 1.0, 1.0)]
    outcomes = ApproachOutcomes()
    for i, name in enumerate(
        ["logical decoding", "trigger audit", "timestamp polling", "Debezium"]
    ):
        events = [event(k, 0.01 * k + i) for k in range(1, 21)]
        runs.append(WorkloadRun(name, ops, events, 2000 + i, 20 + 20 * i, 1.0, 2.0))
        for rule in RULES:
            outcomes.record(name, rule, yes=(i + len(rule)) % 2 == 0, detail=f"{rule}: {name}")
    return comparison_table_html(runs, outcomes, note="sample measurements, not from a run")


def _sample_diff_html() -> str:
    expected = {(k,): {"id": k, "name": f"customer {k}", "tier": "gold"} for k in range(1, 13)}
    actual = {k: dict(v) for k, v in expected.items() if k[0] % 4}
    for key in list(actual)[:4]:
        actual[key]["tier"] = "silver"
    return diff_by_key(expected, actual).to_html()


def _write_results(results: Path) -> Path:
    results.mkdir(parents=True)
    attachments = []
    for name, html in ((TABLE, _sample_comparison_html()), (DIFF, _sample_diff_html())):
        source = f"{uuid.uuid4()}-attachment.html"
        (results / source).write_text(html, encoding="utf-8")
        attachments.append({"name": name, "source": source, "type": "text/html"})
    result = {
        "uuid": str(uuid.uuid4()),
        "historyId": "render",
        "fullName": "features/postgres/approaches.feature:Compare the approaches",
        "name": "Compare the approaches",
        "status": "passed",
        "start": 1,
        "stop": 3,
        "labels": [
            {"name": "epic", "value": "PostgreSQL"},
            {"name": "feature", "value": "CDC approaches compared"},
        ],
        "steps": [
            {
                "name": "Then the comparison table is attached",
                "status": "passed",
                "start": 1,
                "stop": 2,
                "attachments": attachments,
            }
        ],
    }
    (results / f"{result['uuid']}-result.json").write_text(json.dumps(result))
    return results


@pytest.fixture(scope="module")
def report_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """file:// URL of the built report's test result page."""
    tmp = tmp_path_factory.mktemp("report-render")
    page = build_report(_write_results(tmp / "allure-results"), tmp / "html", repo_root=REPO_ROOT)
    ids = re.findall(r'd\("data/test-results/([0-9a-f]+)\.json"', page.read_text("utf-8"))
    assert len(ids) == 1, f"expected one test result in the report, found {ids}"
    return f"{page.as_uri()}#{ids[0]}"


@pytest.fixture(scope="module")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chromium]:
    """Headless Chromium; each check leaves a screenshot of what it measured in ``shots``."""
    with Chromium(width=1400, height=1000, shots=tmp_path_factory.mktemp("shots")) as browser:
        yield browser


def _open(chromium: Chromium, url: str) -> None:
    chromium.navigate("about:blank")  # a fresh app: no modal left open
    chromium.navigate(url)
    chromium.wait_for(
        f"!!({_ROW.format(name=json.dumps(TABLE))})", what="the attachment row to render"
    )


def _expand(chromium: Chromium, name: str) -> str:
    """Open attachment row ``name`` (unless open: the viewer remembers open rows); its frame."""
    row = _ROW.format(name=json.dumps(name))
    chromium.evaluate(
        f"(() => {{ const row = {row}; if (row.children.length < 2) "
        "row.querySelector('[data-testid=test-result-attachment-header] button').click(); })()"
    )
    return _FRAME.format(row=row)


def _full_screen(chromium: Chromium, name: str) -> str:
    """Open attachment ``name`` in the full-screen view; its frame there."""
    # The header's tool buttons end with [..., full-screen, download].
    chromium.evaluate(
        f"(() => {{ const buttons = ({_ROW.format(name=json.dumps(name))})"
        ".querySelectorAll('[data-testid=test-result-attachment-header] button');"
        "buttons[buttons.length - 2].click(); })()"
    )
    return _MODAL_FRAME


def _assert_shown_in_full(chromium: Chromium, frame: str, view: str) -> None:
    """Wait until the frame is as tall as its content; fail saying what was measured."""
    chromium.wait_for(f"!!({frame})", what=f"the attachment frame in the {view}")

    def measure() -> list[float] | None:
        return chromium.evaluate(_MEASURE.format(frame=frame))

    def shown_in_full(seen: list[float] | None) -> bool:
        return bool(seen) and seen[0] > DEFAULT_IFRAME_HEIGHT and seen[0] >= seen[1]

    try:
        wait_until(
            measure,
            done=shown_in_full,
            timeout=20,
            ignore=(RuntimeError,),  # e.g. a blob: URL revoked while the viewer re-renders
            expected=f"the {view}'s frame as tall as its content (> {DEFAULT_IFRAME_HEIGHT} px)",
            describe=lambda s: (
                "no frame" if not s else f"frame {s[0]} px, content {s[1]} px at width {s[2]} px"
            ),
        )
    finally:  # for a person to look at: the frame's top and its bottom
        for end in ("start", "end"):
            chromium.evaluate(f"({frame})?.scrollIntoView({{block: '{end}'}})")
            chromium.screenshot(f"{view.replace(' ', '-')}-{end}.png")


def test_html_attachments_are_shown_in_full_inline(chromium: Chromium, report_url: str) -> None:
    _open(chromium, report_url)
    for name in (TABLE, DIFF):
        _assert_shown_in_full(chromium, _expand(chromium, name), f"inline {name}")


def test_the_comparison_table_is_shown_in_full_in_the_attachments_tab(
    chromium: Chromium, report_url: str
) -> None:
    _open(chromium, f"{report_url}/attachments")
    _assert_shown_in_full(chromium, _expand(chromium, TABLE), "attachments tab")


def test_the_comparison_table_is_shown_in_full_in_the_full_screen_view(
    chromium: Chromium, report_url: str
) -> None:
    _open(chromium, report_url)
    _assert_shown_in_full(chromium, _full_screen(chromium, TABLE), "full-screen view")
