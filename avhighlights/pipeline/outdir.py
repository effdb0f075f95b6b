"""The per-video output folder: one writer at a time, files the renderer owns, debris of killed runs.

- Lock: a render holds an exclusive `flock` on the folder itself; a second concurrent run into the
  same folder fails at once with `OutputError` (exit 8) instead of interleaving its files.
- Ownership: a render only deletes media it wrote, i.e. names recorded in the folder's manifest
  (`.highlights-outputs.json`) that also match the names it generates (`clip_NN_SSSSS.SS-EEEEE.EE`,
  `reel`); a `path` or `reel` typed into highlights.json never makes a file deletable.
- Staging folders are named `.render-<pid>-*`; one whose process is gone (or older than
  `STALE_AFTER_S`) is left over from a killed run and removed by the next render.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from avhighlights.core.atomic import write_text
from avhighlights.core.errors import OutputError

MANIFEST_NAME = ".highlights-outputs.json"  # media files the renders wrote (users may edit highlights.json)
STAGING_PREFIX = ".render-"
STALE_AFTER_S = 6 * 3600.0  # a staging folder this old is debris even if its pid is alive (pid reuse)
OWNED_MEDIA = re.compile(r"^(clip_\d{2,}_\d{5,}\.\d{2}-\d{5,}\.\d{2}|reel)\.(mp4|mkv)$")
_STAGING_PID = re.compile(rf"^{re.escape(STAGING_PREFIX)}(\d+)-")


@dataclass(frozen=True)
class Manifest:
    """What earlier renders in the folder wrote: media names, clip spans per name, the verified source."""

    media: frozenset[str] = frozenset()
    clip_spans: dict[str, tuple[float, float]] = field(default_factory=dict)
    source: dict | None = None

    def owned_media(self, out_dir: Path) -> set[Path]:
        return {out_dir / name for name in self.media if OWNED_MEDIA.match(name)}

    def to_json(self) -> dict:
        return {"media": sorted(self.media), "clips": [{"path": p, "start_s": a, "end_s": b}
                                                       for p, (a, b) in sorted(self.clip_spans.items())],
                "source": self.source}


def read_manifest(out_dir: Path) -> Manifest:
    try:
        data = json.loads((out_dir / MANIFEST_NAME).read_text(encoding="utf-8"))
        media = frozenset(n for n in data.get("media", []) if isinstance(n, str))
        spans = {c["path"]: (float(c["start_s"]), float(c["end_s"])) for c in data.get("clips", [])
                 if isinstance(c, dict) and isinstance(c.get("path"), str)}
        source = data.get("source") if isinstance(data.get("source"), dict) else None
    except (OSError, ValueError, AttributeError, TypeError, KeyError):
        return Manifest()
    return Manifest(media, spans, source)


def write_manifest(folder: Path, manifest: Manifest) -> Path:
    return write_text(folder / MANIFEST_NAME, json.dumps(manifest.to_json(), indent=1) + "\n")


@contextlib.contextmanager
def locked(out_dir: Path) -> Iterator[None]:
    """Hold the folder's exclusive lock for the block; OutputError when another run holds it."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(out_dir, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise OutputError(f"{out_dir}: cannot use it as the output folder ({exc.strerror or exc})") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holders = sorted({str(pid) for pid, _ in _staging_folders(out_dir)}) or ["?"]
            raise OutputError(f"{out_dir}: another run (pid {', '.join(holders)}) is writing here; wait for it "
                              "or choose another output folder") from None
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def make_staging(out_dir: Path) -> Path:
    try:
        return Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-", dir=out_dir))
    except OSError as exc:
        raise OutputError(f"{out_dir}: cannot write there ({exc.strerror or exc})") from None


def remove_stale_staging(out_dir: Path, now_s: float | None = None) -> list[Path]:
    """Remove staging folders of runs that are gone (or older than STALE_AFTER_S); returns them."""
    now_s = time.time() if now_s is None else now_s
    removed = []
    for pid, path in _staging_folders(out_dir):
        try:
            age_s = now_s - path.stat().st_mtime
        except OSError:
            continue
        if pid != os.getpid() and (not _alive(pid) or age_s > STALE_AFTER_S):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _staging_folders(out_dir: Path) -> list[tuple[int, Path]]:
    found = []
    for path in out_dir.glob(f"{STAGING_PREFIX}*"):
        match = _STAGING_PID.match(path.name)
        if path.is_dir():
            found.append((int(match.group(1)) if match else 0, path))  # pid 0: an older, pid-less name
    return found


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
