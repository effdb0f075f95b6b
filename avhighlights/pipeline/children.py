"""Child processes (ffmpeg) that do not outlive the run that started them.

`die_with_parent` is a `preexec_fn` asking Linux to SIGKILL the child when its parent dies, so a
SIGKILLed render leaves no ffmpeg behind. `terminate_as_exit` turns SIGTERM into `SystemExit(143)`
for a block (main thread only): `subprocess.run` then kills the running child and every `finally`
clean-up (the staging folder) runs before the process exits. Children started with `run` from worker
threads are tracked, so `kill_running` can end them when the main thread stops early (SIGTERM, an error).
"""

from __future__ import annotations

import contextlib
import ctypes
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator

PR_SET_PDEATHSIG = 1
SIGTERM_EXIT_CODE = 128 + signal.SIGTERM
# resolved once in the parent, so the forked child only makes the call (nothing to import or load there)
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None
_SIGKILL = int(signal.SIGKILL)
_THREAD = threading.local()  # .group: the ChildGroup the current thread's children join


def die_with_parent() -> None:
    """preexec_fn for subprocess: the child receives SIGKILL when the parent process dies (Linux only)."""
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, _SIGKILL)


def _raise_exit(signum, frame) -> None:
    raise SystemExit(SIGTERM_EXIT_CODE)


@contextlib.contextmanager
def terminate_as_exit() -> Iterator[None]:
    """Within the block, SIGTERM raises SystemExit(143) (only in the main thread; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_exit)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class ChildGroup:
    """The children that `run` starts in threads working for one task; `kill` ends them (and any started
    after it), so a task stopped early (SIGTERM, a failed clip) leaves nothing running, and other tasks in the
    same process (parallel renders) keep theirs."""

    def __init__(self) -> None:
        self._procs: set[subprocess.Popen] = set()
        self._lock = threading.Lock()
        self._killed = False

    @contextlib.contextmanager
    def joined(self) -> Iterator[None]:
        """Within the block, children this thread starts with `run` belong to the group."""
        previous = getattr(_THREAD, "group", None)
        _THREAD.group = self
        try:
            yield
        finally:
            _THREAD.group = previous

    def kill(self) -> None:
        with self._lock:
            self._killed = True
            for proc in self._procs:
                proc.kill()

    def _add(self, proc: subprocess.Popen) -> None:
        with self._lock:
            self._procs.add(proc)
            if self._killed:
                proc.kill()

    def _discard(self, proc: subprocess.Popen) -> None:
        with self._lock:
            self._procs.discard(proc)


def run(args: list[str]) -> subprocess.CompletedProcess:
    """`subprocess.run(args)` with text output captured and the child dying with the parent; it joins the
    current thread's `ChildGroup`, if any."""
    group: ChildGroup | None = getattr(_THREAD, "group", None)
    with subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace",
                          preexec_fn=die_with_parent) as proc:
        if group is not None:
            group._add(proc)
        try:
            stdout, stderr = proc.communicate()
        except BaseException:
            proc.kill()
            raise
        finally:
            if group is not None:
                group._discard(proc)
    return subprocess.CompletedProcess(args, proc.returncode, stdout, stderr)
