"""A real headless Chromium driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`):
open a page, collect console errors, exceptions and failed loads, evaluate JavaScript, take a screenshot.

No extra dependency: the protocol is NUL-terminated JSON on file descriptors 3 (to the browser) and 4
(from it), handed over by a tiny Python wrapper that execs the browser.
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# runs in the child: the two pipe ends, first moved above 9 so that neither is overwritten, become fds 3 and 4
HAND_OVER = """import fcntl, os, sys
to_browser, from_browser = (fcntl.fcntl(int(fd), fcntl.F_DUPFD_CLOEXEC, 10) for fd in sys.argv[1:3])
os.dup2(to_browser, 3)
os.dup2(from_browser, 4)
os.execvp(sys.argv[3], sys.argv[3:])"""
BINARIES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    return next((path for name in BINARIES if (path := shutil.which(name))), None)


@dataclass
class PageRun:
    """What loading one page produced."""

    errors: list[str] = field(default_factory=list)  # console errors, uncaught exceptions, failed loads
    values: dict[str, Any] = field(default_factory=dict)  # expression -> value after load


class Chromium:
    """One headless browser process; use as a context manager."""

    def __init__(self, binary: str, width_px: int = 1280, height_px: int = 2000, timeout_s: float = 60.0):
        self.width_px, self.height_px, self.timeout_s = width_px, height_px, timeout_s
        self.profile = tempfile.mkdtemp(prefix="avh-chromium-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        args = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe", "--mute-audio",
                "--no-first-run", "--hide-scrollbars", f"--user-data-dir={self.profile}",
                f"--window-size={width_px},{height_px}", "about:blank"]
        wrapper = [sys.executable, "-c", HAND_OVER, str(to_browser_r), str(from_browser_w), *args]
        self.proc = subprocess.Popen(wrapper, pass_fds=(to_browser_r, from_browser_w), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._next_id, self._buffer, self._events = 0, b"", []

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc) -> None:
        try:
            self._send("Browser.close")
        except OSError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)
        shutil.rmtree(self.profile, ignore_errors=True)

    def _send(self, method: str, params: dict | None = None, session: str | None = None) -> int:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        return self._next_id

    def _receive(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self._from_browser], [], [], remaining)[0]:
                raise TimeoutError("chromium did not answer in time")
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise ConnectionError("chromium closed the DevTools pipe")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        """Send a command and wait for its result (events that arrive meanwhile are kept)."""
        wanted, deadline = self._send(method, params, session), time.monotonic() + self.timeout_s
        while True:
            message = self._receive(deadline)
            if message.get("id") == wanted:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self._events.append(message)

    def _wait_event(self, name: str, session: str) -> None:
        deadline = time.monotonic() + self.timeout_s
        while not any(e.get("method") == name and e.get("sessionId") == session for e in self._events):
            self._events.append(self._receive(deadline))

    def open(self, url: str, expressions: tuple[str, ...] = (), screenshot: Path | None = None) -> PageRun:
        """Load `url`, wait for its load event, evaluate `expressions`, optionally save a full-page PNG."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Runtime", "Log", "Page"):
            self.call(f"{domain}.enable", session=session)
        self.call("Emulation.setDeviceMetricsOverride", {"width": self.width_px, "height": self.height_px,
                                                         "deviceScaleFactor": 1, "mobile": False}, session)
        self._events.clear()
        self.call("Page.navigate", {"url": url}, session)
        self._wait_event("Page.loadEventFired", session)
        run = PageRun()
        for expression in expressions:
            result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                    "awaitPromise": True}, session)
            run.values[expression] = result.get("result", {}).get("value")
        if screenshot is not None:
            shot = self.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}, session)
            screenshot.write_bytes(base64.b64decode(shot["data"]))
        run.errors = [_error_text(e) for e in self._events if e.get("sessionId") == session and _is_error(e)]
        return run


def _is_error(event: dict) -> bool:
    method, params = event.get("method"), event.get("params", {})
    if method == "Runtime.exceptionThrown":
        return True
    if method == "Runtime.consoleAPICalled":
        return params.get("type") in ("error", "assert")
    if method == "Log.entryAdded":
        return params.get("entry", {}).get("level") == "error"
    return False


def _error_text(event: dict) -> str:
    params = event.get("params", {})
    if event.get("method") == "Log.entryAdded":
        entry = params["entry"]
        return f"{entry.get('source')}: {entry.get('text')} {entry.get('url', '')}".strip()
    if event.get("method") == "Runtime.exceptionThrown":
        return f"exception: {params.get('exceptionDetails', {}).get('text')}"
    return "console: " + " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
