"""One child process, measured from outside: wall seconds, CPU seconds (user + sys), the kernel's peak RSS of
the largest single process of its tree (`os.wait4`: the child and the descendants it reaped, e.g. its ffmpeg
children), and the peak summed RSS of the live tree (psutil, polled)."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import psutil

POLL_S = 0.1


@dataclass(frozen=True)
class Measurement:
    wall_s: float
    cpu_s: float
    peak_rss_mb: float  # the largest single process (kernel accounting)
    peak_tree_rss_mb: float  # the whole live process tree at its largest (polled every POLL_S)
    exit_code: int
    stderr_tail: str

    def to_dict(self) -> dict:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(self).items()}


class _TreePoller(threading.Thread):
    """Samples the summed RSS of `pid` and all its descendants until stopped."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak_bytes, self._done = pid, 0, threading.Event()

    def run(self) -> None:
        try:
            root = psutil.Process(self.pid)
        except psutil.Error:
            return
        while not self._done.is_set():
            self.peak_bytes = max(self.peak_bytes, _tree_rss(root))
            self._done.wait(POLL_S)

    def stop(self) -> int:
        self._done.set()
        self.join()
        return self.peak_bytes


def _tree_rss(root: psutil.Process) -> int:
    total = 0
    try:
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except psutil.Error:
            continue
    return total


def measure(command: Sequence[str], env: Mapping[str, str] | None = None, cwd: str | None = None,
            timeout_s: float | None = None, keep_stderr_bytes: int | None = 2000) -> Measurement:
    """Run `command` (stdout discarded, the last `keep_stderr_bytes` of stderr kept, all of it for None) and
    measure it; a run past `timeout_s` is killed (its whole session) and reported with exit code -9."""
    with tempfile.TemporaryFile() as stderr:
        t0 = time.perf_counter()
        process = subprocess.Popen(list(command), stdout=subprocess.DEVNULL, stderr=stderr, env=dict(env or os.environ),
                                   cwd=cwd, start_new_session=True)
        poller = _TreePoller(process.pid)
        poller.start()
        timer = threading.Timer(timeout_s, _kill_session, args=(process.pid,)) if timeout_s else None
        if timer:
            timer.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        except BaseException:  # interrupted (Ctrl-C, SIGTERM): the child's session must not outlive the benchmark
            _kill_session(process.pid)
            os.waitpid(process.pid, 0)
            process.returncode = -9
            raise
        wall_s = time.perf_counter() - t0
        if timer:
            timer.cancel()
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
        peak_tree = poller.stop()
        stderr.seek(0)
        kept = stderr.read()
        tail = (kept if keep_stderr_bytes is None else kept[-keep_stderr_bytes:]).decode(errors="replace")
    return Measurement(wall_s=wall_s, cpu_s=usage.ru_utime + usage.ru_stime, peak_rss_mb=usage.ru_maxrss / 1024,
                       peak_tree_rss_mb=peak_tree / 2**20, exit_code=process.returncode, stderr_tail=tail)


def _kill_session(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
