"""A real Prefect server on loopback for the flow tests (one per test session).

`running_prefect_server()` wraps `prefect_test_harness` (a temporary SQLite database and a server
subprocess) and exports PREFECT_API_URL so subprocesses (`prefect ...`, `python -m
avhighlights.flows.serve`, workers) talk to the same server. The `prefect_server` fixture in
tests/conftest.py uses it; import-time Prefect is kept out of conftest so non-flow tests stay fast.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

SERVER_ENV = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_LOGGING_LEVEL": "INFO",
    "PREFECT_CLI_PROMPT": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
}

# Runners (`serve`) and workers poll the server every 10 s and 15 s by default; tests poll every second.
FAST_POLL = {"PREFECT_RUNNER_POLL_FREQUENCY": "1", "PREFECT_WORKER_QUERY_SECONDS": "1",
             "PREFECT_WORKER_PREFETCH_SECONDS": "2"}


@contextlib.contextmanager
def _patched_environ(updates: dict[str, str]) -> Iterator[None]:
    before = {name: os.environ.get(name) for name in updates}
    os.environ.update(updates)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def running_prefect_server(startup_timeout_s: int = 90) -> Iterator[str]:
    """Yields the API URL of a fresh server; PREFECT_API_URL (and a private PREFECT_HOME) are set
    in os.environ for the duration so subprocesses use it too."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    home = tempfile.mkdtemp(prefix="avh-prefect-home-")
    with _patched_environ(SERVER_ENV), prefect_test_harness(server_startup_timeout=startup_timeout_s):
        url = PREFECT_API_URL.value()
        with _patched_environ({"PREFECT_API_URL": url, "PREFECT_HOME": home}):
            yield url


def prefect_cli(*args: str, timeout_s: float = 120.0, check: bool = True, cwd: str | Path | None = None,
                env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run `prefect <args>` in a subprocess against $PREFECT_API_URL (or `env`'s, which overrides os.environ)."""
    done = subprocess.run([sys.executable, "-m", "prefect", *args], capture_output=True, text=True,
                          timeout=timeout_s, env={**os.environ, **(env or {})}, cwd=cwd)
    if check and done.returncode != 0:
        raise AssertionError(f"prefect {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


def spawn(args: list[str], log_path: Path, cwd: str | Path | None = None,
          env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start a background process (own process group) whose output goes to `log_path`."""
    handle = open(log_path, "ab")  # noqa: SIM115 - closed with the process by `stop`
    process = subprocess.Popen(args, stdout=handle, stderr=subprocess.STDOUT, cwd=cwd,
                               env={**os.environ, **(env or {})}, start_new_session=True)
    process.log_handle = handle
    return process


def stop(process: subprocess.Popen, timeout_s: float = 15.0) -> None:
    """Terminate a process started by `spawn` (and its group), killing it after `timeout_s`."""
    import signal

    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout_s)
    handle = getattr(process, "log_handle", None)
    if handle is not None:
        handle.close()


def wait_until(predicate, timeout_s: float, interval_s: float = 0.5, what: str = "condition"):
    """Poll `predicate` until it returns something truthy; fails after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
