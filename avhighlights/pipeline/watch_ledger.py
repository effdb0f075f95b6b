"""The watched folder's persistent ledger: what happened to each content (by sha256) and which files were seen.

One JSON file in the state folder, rewritten atomically after every change, so a restarted watcher (or a
new one on the same state folder) neither re-processes a content nor re-hashes an unchanged file.

Layout::

    {"version": 1,
     "contents": {sha256: {"status", "path", "names", "run_id", "attempts", "reason", "updated"}},
     "files": {path: {"size", "mtime_ns", "sha256"}}}
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from avhighlights.core.atomic import write_json
from avhighlights.core.errors import ConfigError

LEDGER_NAME = "ledger.json"
LEDGER_VERSION = 1

SUBMITTED, COMPLETED, FAILED = "submitted", "completed", "failed"
QUARANTINED, TRIGGER_FAILED = "quarantined", "trigger_failed"
FINAL_STATUSES = frozenset({SUBMITTED, COMPLETED, QUARANTINED})  # never submitted again
RETRYABLE_STATUSES = frozenset({FAILED, TRIGGER_FAILED})  # submitted again while attempts remain
# `attempts` counts runs created: a trigger that failed (e.g. the server was down) created none.


@dataclass
class ContentRecord:
    """What the watcher did with one content; `names` lists every path it was seen under."""

    status: str
    path: str
    names: list[str] = field(default_factory=list)
    run_id: str | None = None
    attempts: int = 0
    reason: str | None = None
    updated: str = ""


@dataclass(frozen=True)
class FileStamp:
    """A file's size and mtime when it was hashed; an unchanged stamp means an unchanged content."""

    size: int
    mtime_ns: int
    sha256: str


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Ledger:
    """The JSON ledger in `state_dir`; every mutating call saves it atomically."""

    def __init__(self, state_dir: str | Path):
        self.path = Path(state_dir) / LEDGER_NAME
        self.contents: dict[str, ContentRecord] = {}
        self.files: dict[str, FileStamp] = {}
        if self.path.exists():
            self._load()

    def _load(self) -> None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{self.path}: unreadable watch ledger ({exc})") from None
        if data.get("version") != LEDGER_VERSION:
            raise ConfigError(f"{self.path}: ledger version {data.get('version')!r}, expected {LEDGER_VERSION}")
        self.contents = {sha: ContentRecord(**rec) for sha, rec in data.get("contents", {}).items()}
        self.files = {path: FileStamp(**stamp) for path, stamp in data.get("files", {}).items()}

    def save(self) -> None:
        write_json(self.path, {
            "version": LEDGER_VERSION,
            "contents": {sha: asdict(rec) for sha, rec in self.contents.items()},
            "files": {path: asdict(stamp) for path, stamp in self.files.items()},
        })

    def get(self, sha256: str) -> ContentRecord | None:
        return self.contents.get(sha256)

    def is_done(self, sha256: str, max_attempts: int) -> bool:
        """Whether this content must not be submitted again (final, or out of attempts)."""
        rec = self.contents.get(sha256)
        if rec is None:
            return False
        return rec.status in FINAL_STATUSES or rec.attempts >= max_attempts

    def stamp_matches(self, path: Path, size: int, mtime_ns: int) -> bool:
        stamp = self.files.get(str(path))
        return stamp is not None and stamp.size == size and stamp.mtime_ns == mtime_ns

    def remember_file(self, path: Path, stamp: FileStamp) -> None:
        self.files[str(path)] = stamp
        self.save()

    def forget_file(self, path: Path) -> None:
        if self.files.pop(str(path), None) is not None:
            self.save()

    def prune_files(self, folder: Path, present: set[Path]) -> None:
        """Forget the stamps of files directly in `folder` that are gone (contents are kept)."""
        gone = [name for name in self.files if Path(name).parent == folder and Path(name) not in present]
        for name in gone:
            del self.files[name]
        if gone:
            self.save()

    def add_name(self, sha256: str, path: Path) -> None:
        rec = self.contents[sha256]
        if str(path) not in rec.names:
            rec.names.append(str(path))
            rec.updated = utc_now()
            self.save()

    def record(self, sha256: str, path: Path, status: str, *, run_id: str | None = None,
               reason: str | None = None, attempted: bool = False) -> ContentRecord:
        """Create or update the record of `sha256`; `attempted` counts one more submission try."""
        rec = self.contents.get(sha256) or ContentRecord(status=status, path=str(path))
        rec.status, rec.path, rec.reason = status, str(path), reason
        rec.run_id = run_id if run_id is not None else rec.run_id
        rec.attempts += int(attempted)
        if str(path) not in rec.names:
            rec.names.append(str(path))
        rec.updated = utc_now()
        self.contents[sha256] = rec
        self.save()
        return rec

    def set_status(self, sha256: str, status: str, reason: str | None = None) -> None:
        """Update a submitted content after its run ended; a failed one becomes eligible again."""
        rec = self.contents[sha256]
        rec.status, rec.reason, rec.updated = status, reason, utc_now()
        if status in RETRYABLE_STATUSES:
            for name in rec.names:  # so the next reconciliation pass looks at the files again
                self.files.pop(name, None)
        self.save()

    def in_flight(self) -> dict[str, ContentRecord]:
        """Contents submitted whose run has not been seen to end."""
        return {sha: rec for sha, rec in self.contents.items() if rec.status == SUBMITTED and rec.run_id}

    def count(self, status: str) -> int:
        return sum(rec.status == status for rec in self.contents.values())
