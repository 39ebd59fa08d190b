"""Unit tests for the offline Allure report builder (pytest_cdc.report.html)."""

from __future__ import annotations

import base64
import json
import re
import shutil
import stat
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from pytest_cdc.report.html import (
    FIT_ATTACHMENTS_JS,
    FIT_ATTACHMENTS_MARKER,
    ReportError,
    build_report,
    external_references,
    fit_html_attachments,
    main,
    strip_analytics,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
REAL_CLI = REPO_ROOT / "node_modules" / ".bin" / "allure"

GA_HTML = """<!DOCTYPE html>
<html><head>
<link rel="icon" href="data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg'%3E">
<script>
  window.allureReportOptions = {"reportName": "cdc-spec"}
</script>
</head><body>
<div id="app"></div>
<script   src="data:text/javascript;base64,Y29uc29sZS5sb2coMSk="></script>
<a href="https://allurereport.org">Allure Report</a>
<script async src="https://www.googletagmanager.com/gtag/js?id=G-LNDJ3J7WT0"></script>
<script>
    window.dataLayer = window.dataLayer || [];
    function gtag(){dataLayer.push(arguments);}
    gtag('js', new Date());
    gtag('config', 'G-LNDJ3J7WT0', {"report": "awesome"});
</script>
<SCRIPT src='//cdn.example.com/tracker.js'></SCRIPT>
<script defer>
  Promise.allSettled([d("widgets/statistic.json","eyJ0b3RhbCI6MX0=")])
</script>
</body></html>
"""


def test_strip_analytics_removes_gtag_and_external_scripts_only() -> None:
    html, removed = strip_analytics(GA_HTML)

    assert "googletagmanager" not in html
    assert "gtag" not in html
    assert "dataLayer" not in html
    assert "cdn.example.com" not in html
    assert len(removed) == 3
    # The report itself (inline options, data: bundle, embedded data) is untouched.
    assert "window.allureReportOptions" in html
    assert 'src="data:text/javascript;base64,Y29uc29sZS5sb2coMSk="' in html
    assert 'd("widgets/statistic.json"' in html
    assert '<a href="https://allurereport.org">' in html
    assert external_references(html) == []


def test_strip_analytics_is_a_no_op_on_clean_html() -> None:
    clean, _ = strip_analytics(GA_HTML)
    again, removed = strip_analytics(clean)
    assert again == clean
    assert removed == []


def test_external_references_flags_fetched_urls_not_links_or_data_uris() -> None:
    html = (
        '<link rel="stylesheet" href="https://fonts.example.com/a.css">'
        '<img src="//img.example.com/x.png"><img src="data:image/png;base64,AAAA">'
        '<iframe src="http://example.com"></iframe><a href="https://example.com">doc</a>'
        '<script src="data:text/javascript;base64,AA=="></script>'
    )
    assert external_references(html) == [
        "<link> https://fonts.example.com/a.css",
        "<img> //img.example.com/x.png",
        "<iframe> http://example.com",
    ]


def test_fit_html_attachments_adds_one_inline_script_before_any_other() -> None:
    """First in <head>: it must wrap URL.createObjectURL before the viewer's scripts run."""
    clean, _ = strip_analytics(GA_HTML)
    fitted = fit_html_attachments(clean)

    script = f"<script {FIT_ATTACHMENTS_MARKER}>\n{FIT_ATTACHMENTS_JS}\n</script>\n"
    assert fitted == clean.replace("<html><head>", "<html><head>" + script, 1)
    assert fitted.index(FIT_ATTACHMENTS_MARKER) < fitted.index("allureReportOptions")
    assert fit_html_attachments(fitted) == fitted
    assert strip_analytics(fitted) == (fitted, [])  # not mistaken for a tracker
    assert external_references(fitted) == []
    assert fit_html_attachments("<p>no head</p>").startswith("<script ")


def test_fit_attachments_script_is_valid_javascript(tmp_path: Path) -> None:
    assert shutil.which("node"), "Node.js not installed: run `make setup`"
    script = tmp_path / "fit.js"
    script.write_text(FIT_ATTACHMENTS_JS)
    proc = subprocess.run(["node", "--check", str(script)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("make_dir", [False, True], ids=["missing", "empty"])
def test_missing_or_empty_results_dir(tmp_path: Path, make_dir: bool) -> None:
    results = tmp_path / "allure-results"
    if make_dir:
        results.mkdir()
        (results / "abc-attachment.json").write_text("{}")  # attachments alone are no results
    with pytest.raises(ReportError) as err:
        build_report(results, tmp_path / "html", repo_root=tmp_path)
    assert str(err.value) == f"no allure results in {results}: run the features first (make demo)"


def test_missing_cli(tmp_path: Path) -> None:
    results = _write_results(tmp_path / "allure-results")
    with pytest.raises(ReportError, match=r"^Allure CLI not installed: run `make setup`$"):
        build_report(
            results, tmp_path / "html", repo_root=tmp_path, allure_bin=tmp_path / "nope" / "allure"
        )


def test_missing_cli_default_location(tmp_path: Path) -> None:
    results = _write_results(tmp_path / "allure-results")
    with pytest.raises(ReportError, match="Allure CLI not installed: run `make setup`"):
        build_report(results, tmp_path / "html", repo_root=tmp_path)


def test_main_reports_errors_on_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--results", str(tmp_path / "none"), "--repo-root", str(tmp_path)])
    assert code == 1
    assert "no allure results in" in capsys.readouterr().err


def _fake_cli(tmp_path: Path, html: str, *, nested: bool = False, exit_code: int = 0) -> Path:
    """A stand-in for `allure generate`: writes ``html`` to <--output>[/awesome]/index.html."""
    script = tmp_path / "fake-allure"
    script.write_text(
        textwrap.dedent(
            f"""\
            #!{sys.executable}
            import sys
            from pathlib import Path
            args = sys.argv[1:]
            assert args[0] == "generate", args
            out = Path(args[args.index("--output") + 1])
            if {nested!r}:
                out = out / "awesome"
            out.mkdir(parents=True, exist_ok=True)
            (out / "index.html").write_text({html!r})
            (out / "summary.json").write_text("{{}}")
            print("fake allure ran", file=sys.stderr)
            sys.exit({exit_code})
            """
        )
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    (tmp_path / "allurerc.mjs").write_text("export default {};\n")
    return script


@pytest.mark.parametrize("nested", [False, True], ids=["flat", "nested"])
def test_build_report_strips_analytics_with_fake_cli(tmp_path: Path, nested: bool) -> None:
    results = _write_results(tmp_path / "allure-results")
    out = tmp_path / "reports" / "html"
    out.mkdir(parents=True)
    (out / "index.html").write_text("stale")
    cli = _fake_cli(tmp_path, GA_HTML, nested=nested)

    page = build_report(results, out, repo_root=tmp_path, allure_bin=cli)

    assert page == out / "index.html"
    text = page.read_text()
    assert "googletagmanager" not in text
    assert "window.allureReportOptions" in text
    assert text.count(FIT_ATTACHMENTS_MARKER) == 1
    assert sorted(p.name for p in out.iterdir()) == ["index.html"]
    assert not list(out.parent.glob(".allure-*")), "temporary build directory left behind"


def test_build_report_refuses_external_stylesheet(tmp_path: Path) -> None:
    results = _write_results(tmp_path / "allure-results")
    html = '<html><head><link rel="stylesheet" href="https://cdn.example.com/x.css"></head></html>'
    cli = _fake_cli(tmp_path, html)
    with pytest.raises(ReportError, match=r"external resources.*cdn\.example\.com"):
        build_report(results, tmp_path / "html", repo_root=tmp_path, allure_bin=cli)
    assert not (tmp_path / "html" / "index.html").exists()


def test_build_report_surfaces_cli_failure(tmp_path: Path) -> None:
    results = _write_results(tmp_path / "allure-results")
    cli = _fake_cli(tmp_path, "<html></html>", exit_code=3)
    with pytest.raises(
        ReportError, match=r"(?s)allure generate failed \(exit 3\).*fake allure ran"
    ):
        build_report(results, tmp_path / "html", repo_root=tmp_path, allure_bin=cli)


def test_real_allure_builds_offline_single_file(tmp_path: Path) -> None:
    """Runs the pinned Allure 3 CLI with the repository's allurerc.mjs."""
    assert REAL_CLI.is_file() and shutil.which("node"), (
        "Allure CLI not installed (node_modules/.bin/allure): run `make setup`"
    )
    results = _write_results(tmp_path / "allure-results")
    out = tmp_path / "html"

    page = build_report(results, out, repo_root=REPO_ROOT)

    assert page == out / "index.html"
    assert sorted(p.name for p in out.iterdir()) == ["index.html"]
    html = page.read_text(encoding="utf-8")
    assert "googletagmanager" not in html and "gtag(" not in html
    assert external_references(html) == []
    assert html.count(FIT_ATTACHMENTS_MARKER) == 1
    data = dict(re.findall(r'd\("([^"]+)","([^"]*)"\)', html))
    results_json = [
        json.loads(base64.b64decode(v))
        for k, v in data.items()
        if k.startswith("data/test-results/")
    ]
    assert [r["name"] for r in results_json] == ["An insert appears as a create event"]
    assert [s["name"] for s in results_json[0]["steps"]][:2] == [
        "Given a table with 3 rows",
        "Then the per-key diff is empty",
    ]
    attachment = next(k for k in data if k.startswith("data/attachments/"))
    assert json.loads(base64.b64decode(data[attachment])) == {"op": "c"}
    tree = json.loads(base64.b64decode(data["widgets/tree.json"]))
    assert "PostgreSQL" in json.dumps(tree)


def _write_results(results: Path) -> Path:
    """Write one minimal allure-python style result (with a step and a JSON attachment)."""
    results.mkdir(parents=True, exist_ok=True)
    source = f"{uuid.uuid4()}-attachment.json"
    (results / source).write_text(json.dumps({"op": "c"}))
    step = {"status": "passed", "start": 1, "stop": 2}
    result = {
        "uuid": str(uuid.uuid4()),
        "historyId": "h1",
        "fullName": "features/orders.feature:An insert appears as a create event",
        "name": "An insert appears as a create event",
        "status": "passed",
        "start": 1,
        "stop": 3,
        "labels": [
            {"name": "epic", "value": "PostgreSQL"},
            {"name": "feature", "value": "Log-based CDC (Debezium)"},
            {"name": "story", "value": "Row changes reach the topic"},
        ],
        "steps": [
            {"name": "Given a table with 3 rows", **step},
            {
                "name": "Then the per-key diff is empty",
                **step,
                "attachments": [
                    {"name": "sample event", "source": source, "type": "application/json"}
                ],
            },
        ],
    }
    (results / f"{result['uuid']}-result.json").write_text(json.dumps(result))
    return results
