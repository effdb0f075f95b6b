"""Child processes (ffmpeg) that do not outlive the run that started them.

`die_with_parent` is a `preexec_fn` asking Linux to SIGKILL the child when its parent dies, so a
SIGKILLed render leaves no ffmpeg behind. `terminate_as_exit` turns SIGTERM into `SystemExit(143)`
for a block (main thread only): `subprocess.run` then kills the running child and every `finally`
clean-up (the staging folder) runs before the process exits.
"""

from __future__ import annotations

import contextlib
import ctypes
import signal
import sys
import threading
from collections.abc import Iterator

PR_SET_PDEATHSIG = 1
SIGTERM_EXIT_CODE = 128 + signal.SIGTERM
# resolved once in the parent, so the forked child only makes the call (nothing to import or load there)
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None
_SIGKILL = int(signal.SIGKILL)


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
