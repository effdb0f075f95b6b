"""Watch a folder for new videos and hand each new content to a trigger exactly once.

Pipeline per file: event or reconciliation scan -> pending -> stable (size and mtime unchanged across two
observations at least `settle_s` apart, and the file opens) -> content sha256 -> already in the ledger?
(renamed or re-copied: skip) -> `probe` (a typed MediaError moves it to the quarantine folder with a
`<name>.reason.txt`) -> `trigger(path, sha256, attempt)`, which must return quickly (fire-and-forget) with a run id
that the ledger records as "submitted". `refresh_runs` later turns submitted runs into completed or failed.

No orchestration library is imported here: the caller injects `trigger` (and optionally `run_state`).
Files whose names start with a dot and sub-folders are ignored, so partial downloads and a quarantine
folder inside the watched folder are never picked up.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import queue
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from avhighlights.core.atomic import write_text
from avhighlights.core.errors import ConfigError, MediaError, MissingFileError
from avhighlights.core.files import VIDEO_SUFFIXES
from avhighlights.pipeline.probe import content_sha256, probe
from avhighlights.pipeline.watch_files import (
    CHANGING,
    GONE,
    UNREADABLE,
    StabilityTracker,
    is_candidate,
    quarantine_file,
    scan_folder,
)
from avhighlights.pipeline.watch_ledger import (
    QUARANTINED,
    SUBMITTED,
    TRIGGER_FAILED,
    FileStamp,
    Ledger,
    utc_now,
)

log = logging.getLogger(__name__)

Trigger = Callable[[Path, str, int], "str | None"]  # (video path, content sha256, attempt from 1) -> run id
RunState = Callable[[str], "str | None"]  # run id -> "completed", "failed" or None while unfinished

LOCK_NAME = "watch.lock"
HEARTBEAT_NAME = "heartbeat"  # rewritten by every reconciliation pass (container healthchecks read its age)


@dataclass(frozen=True)
class WatchConfig:
    """Where to watch and how patiently; `reconcile_s` is the period of the full scan."""

    folder: Path
    state_dir: Path
    quarantine: Path
    settle_s: float = 2.0
    reconcile_s: float = 30.0
    poll_s: float = 0.5
    max_attempts: int = 2  # runs per content when runs fail (a trigger that raised is retried regardless)
    suffixes: tuple[str, ...] = VIDEO_SUFFIXES

    def __post_init__(self) -> None:
        if self.settle_s < 0 or self.reconcile_s <= 0 or self.poll_s <= 0 or self.max_attempts < 1:
            raise ConfigError("watch: settle_s >= 0, reconcile_s > 0, poll_s > 0 and max_attempts >= 1 required")


class _QueueHandler(FileSystemEventHandler):
    """Feeds the path of every created, modified or moved-in candidate file into a queue."""

    def __init__(self, paths: queue.Queue, suffixes: tuple[str, ...]):
        self.paths = paths
        self.suffixes = suffixes

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory or event.event_type not in ("created", "modified", "moved", "closed"):
            return
        raw = event.dest_path if event.event_type == "moved" else event.src_path
        path = Path(raw.decode() if isinstance(raw, bytes) else raw)
        if is_candidate(path, self.suffixes):
            self.paths.put(path)


class FolderWatcher:
    """Watches `config.folder`; `run` loops, `poll_once` does one step (what the loop and the tests call)."""

    def __init__(self, config: WatchConfig, trigger: Trigger, *, validate: Callable[[Path, str], object] = probe,
                 run_state: RunState | None = None, clock: Callable[[], float] = time.monotonic):
        self.config = config
        self.trigger = trigger
        self.validate = validate
        self.run_state = run_state
        self.clock = clock
        config.state_dir.mkdir(parents=True, exist_ok=True)
        self.ledger = Ledger(config.state_dir)
        self.tracker = StabilityTracker(config.settle_s, clock)
        self.events: queue.Queue[Path] = queue.Queue()
        self.stats: Counter[str] = Counter()
        self._pending: dict[Path, None] = {}  # insertion-ordered set
        self._last_reconcile: float | None = None
        self._observer: Observer | None = None

    # -- event stream and reconciliation ---------------------------------------------------------

    def start_observer(self) -> None:
        """Start the watchdog observer (events only hint; reconciliation is the safety net)."""
        self.config.folder.mkdir(parents=True, exist_ok=True)
        self._observer = Observer()
        self._observer.schedule(_QueueHandler(self.events, self.config.suffixes), str(self.config.folder),
                                recursive=False)
        self._observer.start()

    def stop_observer(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=10)
            self._observer = None

    def reconcile(self) -> int:
        """Full scan: queue every candidate not already in the ledger with its size and mtime; returns how many."""
        self._last_reconcile = self.clock()
        write_text(self.config.state_dir / HEARTBEAT_NAME, utc_now() + "\n")
        if self.run_state is not None:
            self.refresh_runs(self.run_state)  # first: a failed run makes its files eligible for this scan
        found = scan_folder(self.config.folder, self.config.suffixes)
        self.ledger.prune_files(self.config.folder, set(found))
        added = 0
        for path in found:
            if path not in self._pending and not self._known_unchanged(path):
                self._pending[path] = None
                added += 1
        return added

    def _known_unchanged(self, path: Path) -> bool:
        try:
            st = path.stat()
        except OSError:
            return False
        return self.ledger.stamp_matches(path, st.st_size, st.st_mtime_ns)

    def _drain_events(self) -> None:
        while True:
            try:
                path = self.events.get_nowait()
            except queue.Empty:
                return
            self._pending[path] = None

    def refresh_runs(self, run_state: RunState) -> None:
        """Ask `run_state` about every submitted run and record the ones that ended."""
        for sha, rec in self.ledger.in_flight().items():
            try:
                state = run_state(rec.run_id)
            except Exception as exc:  # noqa: BLE001 - an unreachable server must not stop the watcher
                log.warning("cannot read the state of run %s: %s", rec.run_id, exc)
                return
            if state is not None:
                self.ledger.set_status(sha, state)
                self.stats[f"run_{state}"] += 1

    # -- one step ---------------------------------------------------------------------------------

    def poll_once(self) -> None:
        """Take in events, run the reconciliation scan when due, and handle every pending file that settled."""
        self._drain_events()
        if self._last_reconcile is None or self.clock() - self._last_reconcile >= self.config.reconcile_s:
            self.reconcile()
        for path in list(self._pending):
            self._check_pending(path)

    @property
    def pending(self) -> list[Path]:
        return list(self._pending)

    def _check_pending(self, path: Path) -> None:
        state = self.tracker.check(path)
        if state == CHANGING:
            return
        self._pending.pop(path, None)
        self.tracker.forget(path)
        if state == GONE:
            self.stats["gone"] += 1
        elif state == UNREADABLE:
            self.stats["unreadable"] += 1
            log.warning("%s: cannot read it (permissions?); the next reconciliation pass retries", path)
        else:
            self._handle_stable(path)

    def _handle_stable(self, path: Path) -> None:
        if self._known_unchanged(path):
            return  # an event on a file already handled (e.g. opened for reading)
        stamp = self._stamp(path)
        if stamp is None:
            return
        if self.ledger.is_done(stamp.sha256, self.config.max_attempts):
            self._handle_known(path, stamp)
            return
        if self._validated(path, stamp):
            self._submit(path, stamp)

    def _stamp(self, path: Path) -> FileStamp | None:
        """Hash the file; None (and back to pending when it changed meanwhile) if that fails."""
        try:
            before = path.stat()
            sha = content_sha256(path)
            after = path.stat()
        except FileNotFoundError:
            self.stats["gone"] += 1
            return None
        except OSError as exc:
            self.stats["unreadable"] += 1
            log.warning("%s: cannot hash it (%s); the next reconciliation pass retries", path, exc)
            return None
        if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns):
            self._pending[path] = None  # still being written after all
            return None
        return FileStamp(size=after.st_size, mtime_ns=after.st_mtime_ns, sha256=sha)

    def _handle_known(self, path: Path, stamp: FileStamp) -> None:
        """A content seen before (renamed, re-copied or a simultaneous duplicate): never submitted again."""
        rec = self.ledger.get(stamp.sha256)
        self.stats["duplicates"] += 1
        if rec.status == QUARANTINED and path.exists():
            self._quarantine(path, stamp, rec.reason or "same content as a quarantined file")
            return
        self.ledger.add_name(stamp.sha256, path)
        self.ledger.remember_file(path, stamp)

    def _validated(self, path: Path, stamp: FileStamp) -> bool:
        try:
            self.validate(path, stamp.sha256)  # the hash is known: probe does not read the file again
        except MissingFileError:
            self.stats["gone"] += 1
            return False
        except MediaError as exc:
            self._quarantine(path, stamp, str(exc))
            return False
        except (OSError, subprocess.SubprocessError) as exc:  # e.g. ffprobe timed out: not the file's fault
            self.stats["validate_error"] += 1
            log.warning("%s: cannot probe it now (%s); the next reconciliation pass retries", path, exc)
            return False
        return True

    def _quarantine(self, path: Path, stamp: FileStamp, reason: str) -> None:
        try:
            moved = quarantine_file(path, self.config.quarantine, reason)
        except OSError as exc:
            log.error("%s: cannot move it to quarantine (%s); it stays, skipped until it changes", path, exc)
            moved = path
        self.ledger.record(stamp.sha256, moved, QUARANTINED, reason=reason)
        if moved == path:
            self.ledger.remember_file(path, stamp)
        else:
            self.ledger.forget_file(path)
        self.stats["quarantined"] += 1
        log.warning("quarantined %s -> %s: %s", path, moved, reason)

    def _attempt(self, sha256: str) -> int:
        rec = self.ledger.get(sha256)
        return 1 + (rec.attempts if rec is not None else 0)

    def _submit(self, path: Path, stamp: FileStamp) -> None:
        try:
            run_id = self.trigger(path, stamp.sha256, self._attempt(stamp.sha256))
        except Exception as exc:  # noqa: BLE001 - e.g. server down: recorded, retried by every reconciliation
            self.ledger.record(stamp.sha256, path, TRIGGER_FAILED, reason=str(exc))  # no run: not an attempt
            self.stats["trigger_failed"] += 1
            log.error("%s: trigger failed: %s", path, exc)
            return
        self.ledger.record(stamp.sha256, path, SUBMITTED, run_id=None if run_id is None else str(run_id),
                           attempted=True)
        self.ledger.remember_file(path, stamp)
        self.stats["submitted"] += 1
        log.info("submitted %s (sha256 %s…) as run %s", path, stamp.sha256[:12], run_id)

    # -- the loop -----------------------------------------------------------------------------------

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the state folder's lock: two watchers on one ledger would submit twice."""
        with open(self.config.state_dir / LOCK_NAME, "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ConfigError(f"{self.config.state_dir}: another watcher uses this state folder") from None
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def run(self, max_iterations: int | None = None, stop: threading.Event | None = None,
            observe: bool = True) -> Counter[str]:
        """Loop until `stop` is set or after `max_iterations` polls; returns the counters."""
        stop = stop or threading.Event()
        with self.exclusive():
            if observe:
                self.start_observer()
            try:
                done = 0
                while not stop.is_set() and (max_iterations is None or done < max_iterations):
                    self.poll_once()
                    done += 1
                    stop.wait(self.config.poll_s)
            finally:
                self.stop_observer()
        return self.stats

    def drain(self, timeout_s: float) -> bool:
        """Poll until nothing is pending (or `timeout_s` passes); True when drained."""
        deadline = time.monotonic() + timeout_s
        self.poll_once()
        while self._pending or not self.events.empty():
            if time.monotonic() > deadline:
                return False
            time.sleep(min(self.config.poll_s, 0.05))
            self.poll_once()
        return True

    def run_once(self, timeout_s: float) -> Counter[str]:
        """One reconciliation pass, then poll until every file found has been handled (the `--once` mode)."""
        with self.exclusive():
            self.reconcile()
            if not self.drain(timeout_s):
                log.warning("still pending after %.0f s: %s", timeout_s, ", ".join(map(str, self._pending)))
        return self.stats
