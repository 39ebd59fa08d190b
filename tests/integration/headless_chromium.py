"""A minimal Chrome DevTools Protocol client over headless Chromium, for report rendering tests.

Starts Debian's ``chromium`` (``make setup`` installs it) with DevTools on a free loopback port
and a throwaway profile, drives its one page over a websocket and offers what the tests need:
navigate, evaluate JavaScript (awaiting promises), wait for a JavaScript condition with a
deadline, and take a PNG screenshot. No network: names do not resolve and http(s) goes to a
closed loopback port, so a page that needs the network shows it.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

import websocket

from cdc_support.waiting import wait_until

CHROMIUM = "chromium"


class Chromium:
    """One headless Chromium with one page; use as a context manager."""

    def __init__(self, width: int = 1400, height: int = 1000, *, shots: Path) -> None:
        self.width, self.height, self.shots = width, height, shots
        self._profile = tempfile.TemporaryDirectory(prefix="cdc-chromium-")
        self._proc: subprocess.Popen[bytes] | None = None
        self._ws: websocket.WebSocket | None = None
        self._next_id = 0

    def __enter__(self) -> Chromium:
        binary = shutil.which(CHROMIUM)
        if binary is None:
            raise RuntimeError("chromium not found: run `make setup` (apt-get install chromium)")
        profile = Path(self._profile.name)
        scratch = profile / "tmp"  # Chromium's own temp dirs, removed with the profile
        scratch.mkdir()
        self._proc = subprocess.Popen(
            [
                binary,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-pings",
                # Nothing may leave the machine: no name resolves and every http(s) request
                # goes to a closed loopback port. file:// pages and DevTools are unaffected.
                "--host-resolver-rules=MAP * ~NOTFOUND",
                "--proxy-server=http://127.0.0.1:9",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                f"--user-data-dir={profile}",
                f"--window-size={self.width},{self.height}",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "TMPDIR": str(scratch)},
            start_new_session=True,  # its own process group: stopped as a whole in __exit__
        )
        port_file = profile / "DevToolsActivePort"
        wait_until(
            lambda: port_file.is_file() and port_file.read_text().strip() != "",
            timeout=30,
            expected=f"chromium to write {port_file}",
        )
        port = int(port_file.read_text().splitlines()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as resp:
            pages = [t for t in json.load(resp) if t["type"] == "page"]
        self._ws = websocket.create_connection(
            pages[0]["webSocketDebuggerUrl"], timeout=30, suppress_origin=True
        )
        self.send("Page.enable")
        self.send("Runtime.enable")
        self.send(
            "Emulation.setDeviceMetricsOverride",
            width=self.width,
            height=self.height,
            deviceScaleFactor=1,
            mobile=False,
        )
        return self

    def __exit__(self, *exc: object) -> None:
        if self._ws is not None:
            self._ws.close()
        if self._proc is not None:
            self._stop_group(signal.SIGTERM)
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._stop_group(signal.SIGKILL)
                self._proc.wait()
            # Renderer and utility processes may outlive the browser process for a moment.
            wait_until(self._group_gone, timeout=10, expected="chromium's processes to exit")
        self._profile.cleanup()

    def _stop_group(self, sig: signal.Signals) -> None:
        assert self._proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._proc.pid, sig)

    def _group_gone(self) -> bool:
        assert self._proc is not None
        try:
            os.killpg(self._proc.pid, 0)
        except ProcessLookupError:
            return True
        return False

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Call one CDP method and return its result (events received meanwhile are dropped)."""
        assert self._ws is not None
        self._next_id += 1
        call_id = self._next_id
        self._ws.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            message = json.loads(self._ws.recv())
            if message.get("id") != call_id:
                continue
            if "error" in message:
                raise RuntimeError(f"CDP {method} failed: {message['error']}")
            return message["result"]

    def evaluate(self, expression: str) -> Any:
        """Evaluate JavaScript in the page (promises awaited) and return its JSON value."""
        result = self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"JavaScript failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def navigate(self, url: str) -> None:
        """Open ``url`` and wait until its document has loaded."""
        self.evaluate("window.__cdcLeaving = true")  # gone once the new document is in place
        if "loaderId" not in self.send("Page.navigate", url=url):
            return  # same-document navigation (only the #fragment changed)
        self.wait_for(
            "!window.__cdcLeaving && document.readyState === 'complete'", what=f"{url} to load"
        )

    def wait_for(self, expression: str, *, what: str, timeout: float = 30) -> Any:
        """Poll a JavaScript expression until it is truthy; return its value."""
        return wait_until(lambda: self.evaluate(expression), timeout=timeout, expected=what)

    def screenshot(self, name: str) -> Path:
        """Write a PNG of the viewport to ``shots/name`` and return its path."""
        data = self.send("Page.captureScreenshot", format="png")["data"]
        path = self.shots / name
        path.write_bytes(base64.b64decode(data))
        return path
