"""Build the offline, single-file Allure 3 report: the report of a run IS the documentation.

Runs the Allure 3 CLI installed by ``npm ci`` (``node_modules/.bin/allure generate``) with the
repository's ``allurerc.mjs`` (awesome plugin, ``singleFile: true``), then removes the Google
Analytics tag that the awesome plugin always writes into ``index.html`` (its template has
``analyticsEnable: true`` hard-coded; ``ALLURE_NO_ANALYTICS`` is only honoured by the allure2
plugin, but is set anyway). It then adds a small inline script that sizes HTML attachments to
their content (:data:`FIT_ATTACHMENTS_JS`), and finally checks that the page references no
external script or stylesheet, so it opens from disk (``file://``) with no network.

Usage::

    python -m pytest_cdc.report [--results reports/allure-results] [--output reports/html]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

DEFAULT_RESULTS = Path("reports/allure-results")
DEFAULT_OUTPUT = Path("reports/html")
CONFIG_FILE = "allurerc.mjs"
ALLURE_BIN = Path("node_modules/.bin/allure")

_SCRIPT_RE = re.compile(r"<script\b(?P<attrs>[^>]*)>(?P<body>.*?)</script\s*>\s*", re.I | re.S)
_SRC_RE = re.compile(r"""\bsrc\s*=\s*["']?\s*(?P<url>[^"'\s>]+)""", re.I)
_EXTERNAL_URL_RE = re.compile(r"^(?:https?:)?//", re.I)
_ANALYTICS_BODY_RE = re.compile(
    r"\bgtag\s*\(|\bdataLayer\b|googletagmanager|google-analytics", re.I
)
# Elements whose src/href makes the browser fetch something (anchors are plain links, fine).
_FETCHING_TAG_RE = re.compile(
    r"<(?P<tag>script|link|iframe|img|embed|source|object)\b(?P<attrs>[^>]*)>", re.I
)
_URL_ATTR_RE = re.compile(r"""\b(?:src|href|data)\s*=\s*["']?\s*(?P<url>[^"'\s>]+)""", re.I)


FIT_ATTACHMENTS_MARKER = "data-cdc-fit-attachments"
FIT_ATTACHMENTS_JS = """(() => {
  // The awesome viewer (@allurereport/web-awesome 3.18) shows text/html and markdown
  // attachments in an iframe sandboxed with "allow-same-origin" whose src is a blob: URL, and
  // sizes it on load from iframe.contentDocument. Opened from disk (file://), the page has an
  // opaque origin: the blob document is not same-origin with it, contentDocument is null, no
  // height is set and the frame keeps the browser default of 150 px. Load the same (already
  // sanitised) HTML through srcdoc, which inherits the page's origin, and size the frame to
  // its content whenever the frame's box changes (shown, resized).
  const FRAMES = 'iframe[src^="blob:"]';
  // The viewer may revoke a blob URL as soon as its frame has loaded, so a fetch of it can
  // fail: keep each Blob the page makes, by URL, and read the attachment from it.
  const blobs = new Map();
  const createObjectURL = URL.createObjectURL.bind(URL);
  URL.createObjectURL = (obj) => {
    const url = createObjectURL(obj);
    if (obj instanceof Blob) blobs.set(url, obj);
    return url;
  };
  const fit = (frame) => {
    const doc = frame.contentDocument;
    if (!doc || !doc.documentElement || !frame.getClientRects().length) return;
    const root = doc.documentElement;
    const scrollbar = Math.max(0, (frame.contentWindow.innerHeight || 0) - root.clientHeight);
    const height = Math.ceil(root.getBoundingClientRect().height + scrollbar) + 'px';
    if (frame.style.height !== height) frame.style.height = height;
  };
  const boxes = new ResizeObserver((entries) => entries.forEach((e) => fit(e.target)));
  const adopt = async (frame) => {
    const src = frame.getAttribute('src');
    if (frame.dataset.cdcFitSrc === src) return;
    frame.dataset.cdcFitSrc = src;
    let text;
    try {
      const blob = blobs.get(src);
      text = blob ? await blob.text() : await (await fetch(src)).text();
    } catch (err) {
      delete frame.dataset.cdcFitSrc; // revoked before it was read: retried on the next change
      return;
    }
    if (frame.getAttribute('src') !== src) return;
    if (!frame.dataset.cdcFitBound) {
      frame.dataset.cdcFitBound = '1';
      frame.addEventListener('load', () => fit(frame));
      boxes.observe(frame);
    }
    frame.srcdoc = text;
  };
  const scan = (node) => {
    if (node.nodeType !== 1) return;
    if (node.matches(FRAMES)) adopt(node);
    node.querySelectorAll(FRAMES).forEach(adopt);
  };
  new MutationObserver((records) => records.forEach((r) => {
    if (r.type === 'attributes') scan(r.target);
    else r.addedNodes.forEach(scan);
  })).observe(document.documentElement,
    { childList: true, subtree: true, attributes: true, attributeFilter: ['src'] });
  scan(document.documentElement);
  // A safety net for what the events above miss, twice a second: adopt a frame not adopted
  // yet (a no-op while its blob is read); reload our copy where the viewer's blob document won
  // after all (seen when it moves a frame into the full-screen view: contentDocument is null
  // again); fit the rest, which does nothing when a frame already fits.
  setInterval(() => document.querySelectorAll(FRAMES).forEach((frame) => {
    if (!frame.srcdoc) adopt(frame);
    else if (!frame.contentDocument) frame.srcdoc += ' ';
    else fit(frame);
  }), 500);
})();"""
"""Inline script added to the report so HTML attachments show in full, not clipped to 150 px."""


class ReportError(RuntimeError):
    """The report could not be built; the message says what to do."""


def _is_analytics(attrs: str, body: str) -> bool:
    """True for a script tag that loads from an external host or runs an analytics snippet."""
    src = _SRC_RE.search(attrs)
    if src and _EXTERNAL_URL_RE.match(src.group("url")):
        return True
    return bool(_ANALYTICS_BODY_RE.search(body))


def strip_analytics(html: str) -> tuple[str, list[str]]:
    """Remove external and analytics ``<script>`` tags from ``html``.

    Returns the cleaned HTML and the opening tags (shortened) of the scripts removed.
    """
    removed: list[str] = []

    def drop(match: re.Match[str]) -> str:
        if not _is_analytics(match.group("attrs"), match.group("body")):
            return match.group(0)
        removed.append(f"<script{match.group('attrs')[:120]}>")
        return ""

    return _SCRIPT_RE.sub(drop, html), removed


def fit_html_attachments(html: str) -> str:
    """Add :data:`FIT_ATTACHMENTS_JS` as the first thing in ``<head>``; a no-op when present.

    First, so that it wraps ``URL.createObjectURL`` before any of the viewer's scripts runs
    (the viewer can render an attachment before a script at the end of the page has run).
    """
    if FIT_ATTACHMENTS_MARKER in html:
        return html
    script = f"<script {FIT_ATTACHMENTS_MARKER}>\n{FIT_ATTACHMENTS_JS}\n</script>\n"
    head = re.search(r"<head\b[^>]*>", html, re.I)
    if head is None:
        return script + html
    return html[: head.end()] + script + html[head.end() :]


def external_references(html: str) -> list[str]:
    """Return http(s) or protocol-relative URLs the page would fetch (script, link, img, ...)."""
    found: list[str] = []
    for tag in _FETCHING_TAG_RE.finditer(html):
        for attr in _URL_ATTR_RE.finditer(tag.group("attrs")):
            url = attr.group("url")
            if _EXTERNAL_URL_RE.match(url):
                found.append(f"<{tag.group('tag')}> {url}")
    return found


def _check_results(results_dir: Path) -> None:
    if not results_dir.is_dir() or not any(results_dir.glob("*-result.json")):
        raise ReportError(f"no allure results in {results_dir}: run the features first (make demo)")


def build_report(
    results_dir: Path,
    output_dir: Path,
    *,
    repo_root: Path,
    allure_bin: Path | None = None,
) -> Path:
    """Generate the single-file report from ``results_dir`` into ``output_dir``.

    ``allure_bin`` defaults to ``repo_root/node_modules/.bin/allure``. Returns the path of the
    final, analytics-free ``index.html`` (HTML attachments sized to their content). Raises
    :class:`ReportError` with an actionable message.
    """
    repo_root = repo_root.resolve()
    results_dir = (repo_root / results_dir).resolve()
    output_dir = (repo_root / output_dir).resolve()
    _check_results(results_dir)
    cli = allure_bin if allure_bin is not None else repo_root / ALLURE_BIN
    if not cli.is_file():
        raise ReportError("Allure CLI not installed: run `make setup`")
    config = repo_root / CONFIG_FILE
    if not config.is_file():
        raise ReportError(f"Allure config {config} is missing")

    output_dir.mkdir(parents=True, exist_ok=True)
    # Generate into a fresh directory: Allure only flattens its output into one index.html when
    # the output directory holds nothing else, and it never removes stale files.
    with tempfile.TemporaryDirectory(prefix=".allure-", dir=output_dir.parent) as tmp:
        _run_allure(cli, config, results_dir, Path(tmp), cwd=repo_root)
        pages = sorted(Path(tmp).rglob("index.html"))
        if len(pages) != 1:
            found = ", ".join(str(p.relative_to(tmp)) for p in pages) or "none"
            raise ReportError(f"expected one single-file index.html from allure, found: {found}")
        html, _removed = strip_analytics(pages[0].read_text(encoding="utf-8"))
        html = fit_html_attachments(html)
        external = external_references(html)
        if external:
            raise ReportError(f"the report still references external resources: {external}")
        staged = Path(tmp) / "index.offline.html"
        staged.write_text(html, encoding="utf-8")
        page = output_dir / "index.html"
        os.replace(staged, page)
    return page


def _run_allure(cli: Path, config: Path, results_dir: Path, output_dir: Path, *, cwd: Path) -> None:
    """Run ``allure generate`` with telemetry/analytics switched off; raise on failure."""
    cmd = [
        str(cli),
        "generate",
        "--config",
        str(config),
        "--cwd",
        str(cwd),
        "--output",
        str(output_dir),
        str(results_dir),
    ]
    env = {**os.environ, "ALLURE_NO_ANALYTICS": "true", "NO_COLOR": "1"}
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode == 127:  # `#!/usr/bin/env node` without node on PATH
        raise ReportError(f"Node.js not found: the Allure 3 CLI needs Node.js >= 20\n{proc.stderr}")
    if proc.returncode != 0:
        raise ReportError(
            f"allure generate failed (exit {proc.returncode}): {' '.join(cmd)}\n"
            f"{proc.stdout}{proc.stderr}".rstrip()
        )


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; prints the path of the generated report."""
    parser = argparse.ArgumentParser(
        prog="python -m pytest_cdc.report", description="Build the offline Allure report."
    )
    parser.add_argument(
        "--results",
        type=Path,
        default=DEFAULT_RESULTS,
        help=f"allure results directory (default: {DEFAULT_RESULTS})",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        help=f"report directory (default: {DEFAULT_OUTPUT})",
    )
    parser.add_argument(
        "--repo-root",
        type=Path,
        default=Path.cwd(),
        help="directory holding allurerc.mjs and node_modules (default: cwd)",
    )
    args = parser.parse_args(argv)
    try:
        page = build_report(args.results.resolve(), args.output.resolve(), repo_root=args.repo_root)
    except ReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(page)
    return 0


if __name__ == "__main__":
    sys.exit(main())
