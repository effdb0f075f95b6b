"""File-level helpers of the watched folder: which names count, when a file has settled, quarantine moves."""

from __future__ import annotations

import shutil
import stat
import time
from collections.abc import Callable
from pathlib import Path

from avhighlights.core.atomic import write_text
from avhighlights.core.files import VIDEO_SUFFIXES
from avhighlights.pipeline.watch_ledger import utc_now

STABLE, CHANGING, GONE, UNREADABLE = "stable", "changing", "gone", "unreadable"


def is_candidate(path: Path, suffixes: tuple[str, ...] = VIDEO_SUFFIXES) -> bool:
    """A visible file name with a video suffix (no check that it exists)."""
    return not path.name.startswith(".") and path.suffix.lower() in suffixes


def scan_folder(folder: Path, suffixes: tuple[str, ...] = VIDEO_SUFFIXES) -> list[Path]:
    """Candidate video files directly inside `folder`, sorted by name."""
    try:
        entries = list(folder.iterdir())
    except FileNotFoundError:
        return []
    return sorted(p for p in entries if is_candidate(p, suffixes) and p.is_file())


def _opens(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            handle.read(1)
    except OSError:
        return False
    return True


class StabilityTracker:
    """Remembers each pending file's (size, mtime) and since when it has not changed."""

    def __init__(self, settle_s: float, clock: Callable[[], float] = time.monotonic):
        self.settle_s = settle_s
        self.clock = clock
        self._seen: dict[Path, tuple[int, int, float]] = {}  # path -> (size, mtime_ns, unchanged since)

    def check(self, path: Path) -> str:
        """STABLE, CHANGING, GONE (deleted) or UNREADABLE (stat or open fails, e.g. permissions)."""
        try:
            st = path.stat()
        except FileNotFoundError:
            self.forget(path)
            return GONE
        except OSError:
            return UNREADABLE
        if not stat.S_ISREG(st.st_mode):  # a folder or a FIFO named like a video: opening it could block
            self.forget(path)
            return GONE
        seen = self._seen.get(path)
        if seen is None or seen[:2] != (st.st_size, st.st_mtime_ns):
            self._seen[path] = (st.st_size, st.st_mtime_ns, self.clock())
            return CHANGING
        if self.clock() - seen[2] < self.settle_s:
            return CHANGING
        return STABLE if _opens(path) else UNREADABLE

    def forget(self, path: Path) -> None:
        self._seen.pop(path, None)


def free_name(folder: Path, name: str) -> Path:
    """`folder/name`, or `folder/<stem> (n)<suffix>` when taken."""
    target = folder / name
    n = 1
    while target.exists():
        target = folder / f"{Path(name).stem} ({n}){Path(name).suffix}"
        n += 1
    return target


def quarantine_file(path: Path, quarantine: Path, reason: str) -> Path:
    """Move `path` into `quarantine` and write `<name>.reason.txt` next to it; returns the new path."""
    quarantine.mkdir(parents=True, exist_ok=True)
    target = free_name(quarantine, path.name)
    shutil.move(str(path), str(target))
    write_text(target.with_name(target.name + ".reason.txt"),
               f"{reason}\nquarantined at {utc_now()} from {path}\n")
    return target
