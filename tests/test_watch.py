"""The watched folder library (no Prefect): stability, once-per-content, quarantine, reconciliation, restart."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from avhighlights.core.errors import ConfigError
from avhighlights.pipeline.probe import content_sha256
from avhighlights.pipeline.watch import FolderWatcher, WatchConfig, scan_folder
from avhighlights.pipeline.watch_ledger import COMPLETED, FAILED, QUARANTINED, SUBMITTED, TRIGGER_FAILED, Ledger

SETTLE_S = 0.3


@pytest.fixture(scope="module")
def base_video(tmp_path_factory) -> bytes:
    """Bytes of a 5-s 96x64 H.264/AAC mp4 (moov at the end, so a partial copy does not probe)."""
    from avhighlights.pipeline.synth import SyntheticSpec, make_synthetic_video

    path = make_synthetic_video(tmp_path_factory.mktemp("base") / "base.mp4",
                                SyntheticSpec(duration_s=5.0, width=96, height=64, fps=10, event_times_s=(2.0,)))
    return path.read_bytes()


def variant(base: bytes, i: int) -> bytes:
    """A distinct content that is still a valid mp4: a trailing `free` box with a unique payload."""
    payload = f"avh-watch-test-{i}".encode()
    return base + struct.pack(">I", 8 + len(payload)) + b"free" + payload


class RecordingTrigger:
    """The injected trigger: records (path, sha256, sha of the bytes on disk now) and returns a run id."""

    def __init__(self, fail_first: int = 0):
        self.calls: list[tuple[Path, str, str]] = []
        self.attempts: list[int] = []
        self.fail_first = fail_first
        self.lock = threading.Lock()

    def __call__(self, path: Path, sha256: str, attempt: int) -> str:
        with self.lock:
            if self.fail_first > 0:
                self.fail_first -= 1
                raise ConnectionError("server unreachable")
            self.attempts.append(attempt)
            self.calls.append((path, sha256, content_sha256(path)))
            return str(uuid.uuid4())

    @property
    def shas(self) -> list[str]:
        return [sha for _, sha, _ in self.calls]


@pytest.fixture
def dirs(tmp_path) -> dict[str, Path]:
    out = {name: tmp_path / name for name in ("in", "state", "quarantine")}
    out["in"].mkdir()
    return out


def make_config(dirs: dict[str, Path], **overrides) -> WatchConfig:
    values = dict(folder=dirs["in"], state_dir=dirs["state"], quarantine=dirs["quarantine"], settle_s=SETTLE_S,
                  reconcile_s=3600.0, poll_s=0.05)
    return WatchConfig(**{**values, **overrides})


def wait_until(watcher: FolderWatcher, condition, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out; stats {dict(watcher.stats)}, pending {watcher.pending}"
        watcher.poll_once()
        time.sleep(0.05)


def settle(watcher: FolderWatcher) -> None:
    """Poll until nothing is pending, then force a full reconciliation and drain again."""
    assert watcher.drain(timeout_s=60.0)
    watcher.reconcile()
    assert watcher.drain(timeout_s=60.0)


def test_fifty_files_dropped_at_once_each_submitted_exactly_once(dirs, base_video):
    trigger = RecordingTrigger()
    watcher = FolderWatcher(make_config(dirs), trigger)
    watcher.start_observer()
    try:
        expected = set()
        for i in range(50):
            data = variant(base_video, i)
            (dirs["in"] / f"clip_{i:02d}.mp4").write_bytes(data)
            expected.add(content_sha256(dirs["in"] / f"clip_{i:02d}.mp4"))
        wait_until(watcher, lambda: len(trigger.calls) >= 50, timeout_s=240.0)
        settle(watcher)
    finally:
        watcher.stop_observer()
    assert len(trigger.calls) == 50
    assert set(trigger.shas) == expected
    assert all(sha == on_disk for _, sha, on_disk in trigger.calls)
    assert watcher.ledger.count(SUBMITTED) == 50
    assert watcher.stats["quarantined"] == 0


def _copy_slowly(data: bytes, target: Path, n_chunks: int = 8, pause_s: float = 0.12) -> None:
    step = -(-len(data) // n_chunks)
    with open(target, "wb") as handle:
        for start in range(0, len(data), step):
            handle.write(data[start:start + step])
            handle.flush()
            time.sleep(pause_s)


def test_file_still_being_copied_is_not_picked_up_early(dirs, base_video):
    trigger = RecordingTrigger()
    watcher = FolderWatcher(make_config(dirs), trigger)
    target = dirs["in"] / "slow copy.mp4"
    writer = threading.Thread(target=_copy_slowly, args=(base_video, target))
    watcher.start_observer()
    try:
        writer.start()
        while writer.is_alive():
            watcher.poll_once()
            assert trigger.calls == [], "picked up before the copy finished"
            time.sleep(0.02)
        writer.join()
        wait_until(watcher, lambda: len(trigger.calls) == 1)
        settle(watcher)
    finally:
        watcher.stop_observer()
    assert len(trigger.calls) == 1
    assert trigger.shas == [content_sha256(target)]
    assert watcher.stats["quarantined"] == 0 and not dirs["quarantine"].exists()


def test_renamed_and_recopied_files_are_not_processed_again(dirs, base_video):
    trigger = RecordingTrigger()
    watcher = FolderWatcher(make_config(dirs), trigger)
    first = dirs["in"] / "a.mp4"
    first.write_bytes(variant(base_video, 1))
    watcher.start_observer()
    try:
        wait_until(watcher, lambda: len(trigger.calls) == 1)
        renamed = first.rename(dirs["in"] / "b.MP4")
        shutil.copyfile(renamed, dirs["in"] / "c.mkv")  # a fresh copy: new mtime, same bytes
        settle(watcher)
    finally:
        watcher.stop_observer()
    assert len(trigger.calls) == 1
    record = watcher.ledger.get(trigger.shas[0])
    assert {Path(name).name for name in record.names} == {"a.mp4", "b.MP4", "c.mkv"}
    assert {Path(name).name for name in watcher.ledger.files} == {"b.MP4", "c.mkv"}  # a.mp4 is gone
    assert watcher.stats["duplicates"] == 2


def test_a_new_file_is_read_for_its_hash_once(dirs, base_video, monkeypatch):
    """The ledger's hash is handed to `probe`, so a new video is hashed once, not once more while validating."""
    from avhighlights.pipeline import probe as probe_module
    from avhighlights.pipeline import watch as watch_module

    hashed: list[str] = []

    def counting_sha256(path) -> str:
        hashed.append(Path(path).name)
        return content_sha256(path)

    monkeypatch.setattr(probe_module, "content_sha256", counting_sha256)
    monkeypatch.setattr(watch_module, "content_sha256", counting_sha256)
    trigger = RecordingTrigger()
    watcher = FolderWatcher(make_config(dirs), trigger)
    (dirs["in"] / "once.mp4").write_bytes(variant(base_video, 21))
    settle(watcher)
    assert len(trigger.calls) == 1 and hashed == ["once.mp4"]
    assert trigger.calls[0][1] == content_sha256(dirs["in"] / "once.mp4")


def test_two_files_with_the_same_content_at_once_submit_once(dirs, base_video):
    trigger = RecordingTrigger()
    watcher = FolderWatcher(make_config(dirs), trigger)
    for name in ("one.mp4", "two.mp4"):
        (dirs["in"] / name).write_bytes(variant(base_video, 7))
    settle(watcher)
    assert len(trigger.calls) == 1
    assert watcher.stats["duplicates"] == 1


def test_bad_file_quarantined_with_reason_while_others_succeed(dirs, base_video):
    trigger = RecordingTrigger()
    watcher = FolderWatcher(make_config(dirs), trigger)
    (dirs["in"] / "good1.mp4").write_bytes(variant(base_video, 1))
    (dirs["in"] / "good2.mp4").write_bytes(variant(base_video, 2))
    (dirs["in"] / "broken.mp4").write_bytes(base_video[: len(base_video) // 2])  # truncated: no moov box
    (dirs["in"] / "notes.mov").write_bytes(b"this is not a video at all\n" * 10)
    settle(watcher)
    assert sorted(path.name for path, _, _ in trigger.calls) == ["good1.mp4", "good2.mp4"]
    assert sorted(p.name for p in scan_folder(dirs["in"])) == ["good1.mp4", "good2.mp4"]
    for name in ("broken.mp4", "notes.mov"):
        assert (dirs["quarantine"] / name).is_file()
        reason = (dirs["quarantine"] / f"{name}.reason.txt").read_text()
        assert name in reason and "quarantined at" in reason
    assert "not a media file" in (dirs["quarantine"] / "notes.mov.reason.txt").read_text()
    assert watcher.ledger.count(QUARANTINED) == 2


def test_recopied_bad_content_goes_straight_to_quarantine(dirs):
    trigger = RecordingTrigger()
    watcher = FolderWatcher(make_config(dirs), trigger)
    (dirs["in"] / "junk.mp4").write_bytes(b"junk" * 100)
    settle(watcher)
    (dirs["in"] / "junk.mp4").write_bytes(b"junk" * 100)
    settle(watcher)
    assert trigger.calls == []
    assert sorted(p.name for p in dirs["quarantine"].iterdir()) == [
        "junk (1).mp4", "junk (1).mp4.reason.txt", "junk.mp4", "junk.mp4.reason.txt"]


def test_reconciliation_catches_a_file_that_arrived_while_the_observer_was_stopped(dirs, base_video):
    trigger = RecordingTrigger()
    watcher = FolderWatcher(make_config(dirs), trigger)
    watcher.start_observer()
    watcher.poll_once()  # first reconciliation: the folder is empty
    watcher.stop_observer()
    (dirs["in"] / "missed.mp4").write_bytes(variant(base_video, 3))
    time.sleep(2 * SETTLE_S)
    assert watcher.drain(timeout_s=5.0) and trigger.calls == [] and watcher.events.empty()
    assert watcher.reconcile() == 1
    wait_until(watcher, lambda: len(trigger.calls) == 1)


def test_periodic_reconciliation_runs_inside_the_loop(dirs, base_video):
    trigger = RecordingTrigger()
    watcher = FolderWatcher(make_config(dirs, reconcile_s=0.2), trigger)
    stop = threading.Event()
    loop = threading.Thread(target=watcher.run, kwargs={"stop": stop, "observe": False})
    loop.start()
    try:
        time.sleep(0.3)
        (dirs["in"] / "late.mp4").write_bytes(variant(base_video, 4))
        deadline = time.monotonic() + 30
        while not trigger.calls and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        loop.join(timeout=30)
    assert [p.name for p, _, _ in trigger.calls] == ["late.mp4"]


def test_ledger_survives_a_restart(dirs, base_video):
    first_trigger = RecordingTrigger()
    first = FolderWatcher(make_config(dirs), first_trigger)
    (dirs["in"] / "kept.mp4").write_bytes(variant(base_video, 5))
    first.run(max_iterations=int(4 * SETTLE_S / 0.05) + 20, observe=True)
    assert len(first_trigger.calls) == 1
    (dirs["in"] / "new.mp4").write_bytes(variant(base_video, 6))
    second_trigger = RecordingTrigger()
    second = FolderWatcher(make_config(dirs), second_trigger)
    settle(second)
    assert [p.name for p, _, _ in second_trigger.calls] == ["new.mp4"]
    assert Ledger(dirs["state"]).count(SUBMITTED) == 2


def test_file_deleted_before_it_settles_is_dropped(dirs, base_video):
    trigger = RecordingTrigger()
    watcher = FolderWatcher(make_config(dirs), trigger)
    doomed = dirs["in"] / "doomed.mp4"
    doomed.write_bytes(variant(base_video, 8))
    watcher.poll_once()
    assert watcher.pending == [doomed]
    doomed.unlink()
    time.sleep(SETTLE_S)
    settle(watcher)
    assert trigger.calls == [] and watcher.stats["gone"] == 1 and watcher.pending == []


def test_fifo_named_like_a_video_is_ignored(dirs, base_video):
    trigger = RecordingTrigger()
    watcher = FolderWatcher(make_config(dirs), trigger)
    os.mkfifo(dirs["in"] / "pipe.mp4")
    watcher.events.put(dirs["in"] / "pipe.mp4")
    settle(watcher)
    assert trigger.calls == [] and watcher.pending == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_unreadable_file_is_retried_once_readable(dirs, base_video):
    trigger = RecordingTrigger()
    watcher = FolderWatcher(make_config(dirs), trigger)
    locked = dirs["in"] / "locked.mp4"
    locked.write_bytes(variant(base_video, 9))
    locked.chmod(0)
    settle(watcher)
    assert trigger.calls == [] and watcher.stats["unreadable"] >= 1
    locked.chmod(0o644)
    settle(watcher)
    assert len(trigger.calls) == 1


def test_trigger_failure_is_recorded_and_retried_without_using_up_attempts(dirs, base_video):
    trigger = RecordingTrigger(fail_first=2)
    watcher = FolderWatcher(make_config(dirs, max_attempts=1), trigger)
    (dirs["in"] / "flaky.mp4").write_bytes(variant(base_video, 10))
    settle(watcher)  # tries twice: the first pass and the forced reconciliation
    (sha, record), = watcher.ledger.contents.items()
    assert (record.status, record.attempts) == (TRIGGER_FAILED, 0)
    assert "server unreachable" in record.reason and trigger.fail_first == 0
    settle(watcher)  # the server is back: the next reconciliation submits it
    assert trigger.attempts == [1] and watcher.ledger.get(sha).status == SUBMITTED


def test_run_states_are_reconciled_and_failed_runs_resubmitted(dirs, base_video):
    trigger = RecordingTrigger()
    states: dict[str, str] = {}
    watcher = FolderWatcher(make_config(dirs, max_attempts=2), trigger, run_state=states.get)
    (dirs["in"] / "ok.mp4").write_bytes(variant(base_video, 11))
    (dirs["in"] / "fails.mp4").write_bytes(variant(base_video, 12))
    settle(watcher)
    run_ids = {path.name: watcher.ledger.get(sha).run_id for path, sha, _ in trigger.calls}
    states[run_ids["ok.mp4"]] = COMPLETED
    states[run_ids["fails.mp4"]] = FAILED
    settle(watcher)  # the reconciliation reads the states, then resubmits the failed content once
    assert [p.name for p, _, _ in trigger.calls] == ["fails.mp4", "ok.mp4", "fails.mp4"]
    assert trigger.attempts == [1, 1, 2]
    assert watcher.ledger.get(trigger.shas[1]).status == COMPLETED
    states[watcher.ledger.get(trigger.shas[0]).run_id] = FAILED
    settle(watcher)
    settle(watcher)
    assert len(trigger.calls) == 3  # max_attempts reached
    assert watcher.ledger.get(trigger.shas[0]).status == FAILED


def test_two_watchers_cannot_share_a_state_folder(dirs):
    first = FolderWatcher(make_config(dirs), RecordingTrigger())
    second = FolderWatcher(make_config(dirs), RecordingTrigger())
    with first.exclusive(), pytest.raises(ConfigError, match="another watcher"):
        second.run(max_iterations=1, observe=False)


def test_invalid_config_is_rejected(dirs):
    with pytest.raises(ConfigError):
        make_config(dirs, settle_s=-1.0)


def test_run_once_submits_what_settles_and_returns(dirs, base_video):
    trigger = RecordingTrigger()
    watcher = FolderWatcher(make_config(dirs), trigger)
    (dirs["in"] / "a.mp4").write_bytes(variant(base_video, 13))
    (dirs["in"] / ".partial.mp4").write_bytes(variant(base_video, 14))  # dot files are never picked up
    (dirs["in"] / "sub").mkdir()
    (dirs["in"] / "sub" / "nested.mp4").write_bytes(variant(base_video, 15))  # neither are sub-folders
    stats = watcher.run_once(timeout_s=60)
    assert stats["submitted"] == 1 and [p.name for p, _, _ in trigger.calls] == ["a.mp4"]
    assert (dirs["state"] / "heartbeat").is_file() and watcher.pending == []


def test_cli_and_library_load_without_prefect():
    code = ("import sys, avhighlights.cli.main as cli, avhighlights.pipeline.watch; "
            "cli.build_parser().parse_args(['watch', '--folder', 'a', '--out', 'b', '--quarantine', 'c', "
            "'--state', 'd', '--once']); assert 'prefect' not in sys.modules, 'prefect imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_bad_file_that_cannot_be_moved_stays_and_is_not_retried(dirs):
    dirs["quarantine"].write_text("a file where the quarantine folder should be")
    watcher = FolderWatcher(make_config(dirs), RecordingTrigger())
    (dirs["in"] / "junk.mp4").write_bytes(b"junk" * 100)
    settle(watcher)
    settle(watcher)
    assert (dirs["in"] / "junk.mp4").is_file() and watcher.stats["quarantined"] == 1
    assert watcher.ledger.count(QUARANTINED) == 1


def test_probe_that_times_out_is_retried_not_quarantined(dirs, base_video):
    from avhighlights.pipeline.probe import probe

    timeouts = {"left": 1}

    def slow_then_real_probe(path: Path, sha256: str):
        if timeouts["left"]:
            timeouts["left"] -= 1
            raise subprocess.TimeoutExpired("ffmpeg", 120)
        return probe(path, sha256)

    trigger = RecordingTrigger()
    watcher = FolderWatcher(make_config(dirs), trigger, validate=slow_then_real_probe)
    (dirs["in"] / "big.mp4").write_bytes(variant(base_video, 16))
    assert watcher.drain(timeout_s=30) and trigger.calls == [] and watcher.stats["validate_error"] == 1
    settle(watcher)
    assert len(trigger.calls) == 1 and watcher.stats["quarantined"] == 0
