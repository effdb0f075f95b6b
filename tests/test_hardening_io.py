"""I/O failures give one line naming the path and the documented exit code (issue #16, case 6).

Output locations: OutputError, exit 8. Feature-store locations: FeatureStoreError, exit 6 (a
read-only store that holds every feature still scores). Checkpoint metadata: CheckpointError, 5.
Read-only and full file systems are real tmpfs mounts where `mount` works (root in a sandbox or CI
container), else skipped; the patched-OS-call variants cover the same mappings everywhere."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from avhighlights.cli.main import main
from avhighlights.core import atomic
from avhighlights.core.errors import OutputError
from avhighlights.extractors import store as store_module
from avhighlights.models.checkpoint import FORMAT
from avhighlights.pipeline.cuts import RenderError
from avhighlights.pipeline.output_dir import prepare_output_dir, writing_to

QUIET = ["--method", "loudness", "--progress", "none", "--no-clips"]


@pytest.fixture(scope="module")
def tiny_video(tmp_path_factory) -> Path:
    from avhighlights.pipeline.synth import SyntheticSpec, make_synthetic_video

    return make_synthetic_video(tmp_path_factory.mktemp("tiny") / "tiny.mp4",
                                SyntheticSpec(duration_s=4.0, width=160, height=120, event_times_s=(1.0,)))


@contextlib.contextmanager
def _tmpfs(path: Path, options: str) -> Iterator[Path]:
    """A tmpfs mounted at `path` with `options`; skips the test where mounting is not allowed."""
    path.mkdir(parents=True, exist_ok=True)
    if shutil.which("mount") is None:
        pytest.skip("no mount command")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.decode().strip()})")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def _error_line(capsys) -> str:
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("avhighlights: error: ")
    return lines[0]


def _score(video: Path, out: Path, store: str | Path | None = None) -> int:
    cache = ["--no-cache"] if store is None else ["--store", str(store)]
    return main(["score", str(video), "--out", str(out), *cache, *QUIET])


# ---- output locations: exit 8 ---------------------------------------------------------------------------------


def test_out_that_is_a_file_exits_8(tiny_video: Path, tmp_path: Path, capsys):
    target = tmp_path / "a-file"
    target.write_text("x")
    assert _score(tiny_video, target) == 8
    line = _error_line(capsys)
    assert f"{target}: the output location exists and is not a folder" in line


def test_out_under_dev_null_exits_8(tiny_video: Path, capsys):
    assert _score(tiny_video, Path("/dev/null/x")) == 8
    line = _error_line(capsys)
    assert "/dev/null/x" in line and "Not a directory" in line


def test_out_on_a_read_only_mount_exits_8(tiny_video: Path, tmp_path: Path, capsys):
    with _tmpfs(tmp_path / "ro", "ro,size=1m") as mount_point:
        assert _score(tiny_video, mount_point / "out") == 8
    line = _error_line(capsys)
    assert f"{mount_point / 'out'}: cannot write the output folder: Read-only file system" in line


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores permission bits")
def test_out_in_an_unwritable_folder_exits_8(tiny_video: Path, tmp_path: Path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    assert _score(tiny_video, locked / "out") == 8
    assert "Permission denied" in _error_line(capsys)


def test_read_only_output_mapping_with_the_os_call_patched(tiny_video: Path, tmp_path: Path, monkeypatch, capsys):
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(tmp_path / "out"))

    monkeypatch.setattr("avhighlights.pipeline.output_dir.tempfile.NamedTemporaryFile", read_only)
    assert _score(tiny_video, tmp_path / "out") == 8
    assert f"{tmp_path / 'out'}: cannot write the output folder: Read-only file system" in _error_line(capsys)


def test_no_space_while_writing_results_exits_8_naming_the_output(tiny_video: Path, tmp_path: Path, monkeypatch,
                                                                  capsys):
    def full_disk(path: Path) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(atomic, "_fsync_file", full_disk)  # where a delayed-allocation ENOSPC surfaces
    assert _score(tiny_video, tmp_path / "out") == 8
    line = _error_line(capsys)
    assert f"{tmp_path / 'out' / tiny_video.stem}: cannot write the output folder: No space left" in line
    assert not list((tmp_path / "out" / tiny_video.stem).glob("highlights.json"))


def test_ffmpeg_reporting_a_full_disk_is_an_output_error(tmp_path: Path):
    with pytest.raises(OutputError, match=r"^/o/v: cannot write the output folder: No space left on device "
                                          r"\(ffmpeg could not write reel.mp4\)$"):
        with writing_to(Path("/o/v")):
            raise RenderError(tmp_path / "in.mp4", "ffmpeg could not write reel.mp4: Error writing trailer of "
                                                   "/o/v/.reel.part: No space left on device")
    with pytest.raises(RenderError):  # any other ffmpeg failure stays a media error about the input
        with writing_to(Path("/o/v")):
            raise RenderError(tmp_path / "in.mp4", "ffmpeg could not write reel.mp4: Invalid data found")


def test_full_disk_exits_8_naming_the_output_not_the_input(tiny_video: Path, tmp_path: Path, capsys):
    with _tmpfs(tmp_path / "full", "size=64k") as mount_point:
        (mount_point / "filler").write_bytes(b"\0" * 60_000)
        with contextlib.suppress(OSError):  # take the last pages too
            (mount_point / "filler2").write_bytes(b"\0" * 65_536)
        code = main(["score", str(tiny_video), "--out", str(mount_point / "out"), "--no-cache", "--method",
                     "loudness", "--progress", "none"])
    assert code == 8
    line = _error_line(capsys)
    assert str(mount_point / "out") in line and "No space left on device" in line and str(tiny_video) not in line


def test_prepare_output_dir_creates_nested_folders(tmp_path: Path):
    folder = prepare_output_dir(tmp_path / "a" / "b")
    assert folder.is_dir() and list(folder.iterdir()) == []  # the write check leaves nothing behind


# ---- feature-store locations: exit 6 --------------------------------------------------------------------------


@pytest.mark.parametrize("store, needle", [("foo://bar", "Protocol not known: foo"),
                                           ("/dev/null/x", "Not a directory")])
def test_unusable_store_location_exits_6(tiny_video: Path, tmp_path: Path, store: str, needle: str, capsys):
    assert _score(tiny_video, tmp_path / "out", store) == 6
    line = _error_line(capsys)
    assert store in line and needle in line
    assert not (tmp_path / "out").exists()


def test_store_that_is_a_file_exits_6(tiny_video: Path, tmp_path: Path, capsys):
    (tmp_path / "store").write_text("x")
    assert _score(tiny_video, tmp_path / "out", tmp_path / "store") == 6
    assert f"{tmp_path / 'store'}: the feature store location exists and is not a folder" in _error_line(capsys)


def test_store_verify_of_a_missing_folder_exits_6_and_creates_nothing(tmp_path: Path, capsys):
    missing = tmp_path / "nonexistent" / "x"
    assert main(["store", "verify", "--store", str(missing)]) == 6
    assert f"{missing}: no feature store here" in _error_line(capsys)
    assert not missing.exists() and not missing.parent.exists()


def _files(root: Path) -> dict[str, float]:
    return {str(p.relative_to(root)): p.stat().st_mtime for p in root.rglob("*")}


def test_read_only_store_mount_serves_every_feature(tiny_video: Path, tmp_path: Path, capsys):
    from avhighlights.pipeline.synth import SyntheticSpec, make_synthetic_video

    other_video = make_synthetic_video(tmp_path / "other.mp4", SyntheticSpec(duration_s=2.0, width=160, height=120))
    with _tmpfs(tmp_path / "store", "size=4m") as root:
        assert _score(tiny_video, tmp_path / "out1", root) == 0
        before = _files(root)
        subprocess.run(["mount", "-o", "remount,ro", str(root)], check=True)
        assert _score(tiny_video, tmp_path / "out2", root) == 0
        assert _files(root) == before
        capsys.readouterr()
        assert _score(other_video, tmp_path / "out3", root) == 6  # not in the store, and it cannot be written
    assert f"{root}: the feature store is read-only and has no loudness features" in _error_line(capsys)
    assert (tmp_path / "out2" / tiny_video.stem / "highlights.json").is_file()


def _read_only_locks(monkeypatch) -> None:
    """Opening any lock file fails as on a read-only mount (root-proof, unlike chmod)."""
    real_open = open

    def open_(path, *args, **kwargs):
        if str(path).endswith(".lock"):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(store_module, "open", open_, raising=False)


def test_read_only_store_serves_hits_and_refuses_misses_before_computing(tiny_video: Path, tmp_path: Path,
                                                                         monkeypatch, capsys):
    store = tmp_path / "store"
    assert _score(tiny_video, tmp_path / "out1", store) == 0
    before = _files(store)
    _read_only_locks(monkeypatch)
    assert _score(tiny_video, tmp_path / "out2", store) == 0
    assert _files(store) == before
    capsys.readouterr()
    feature_store = store_module.FeatureStore(store)
    from avhighlights.extractors.base import create_extractor

    with pytest.raises(store_module.FeatureStoreError, match="read-only and has no loudness features"):
        feature_store.get_or_compute("0" * 64, create_extractor("loudness"), lambda: pytest.fail("computed"))


def test_full_store_exits_6_naming_the_store(tiny_video: Path, tmp_path: Path, monkeypatch, capsys):
    def full_disk(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(store_module.os, "fsync", full_disk)
    assert _score(tiny_video, tmp_path / "out", tmp_path / "store") == 6
    line = _error_line(capsys)
    assert f"{tmp_path / 'store'}: cannot store features (No space left on device)" in line
    assert not [p for p in (tmp_path / "store").rglob("*") if ".tmp-" in p.name]


def test_full_store_mount_exits_6(tiny_video: Path, tmp_path: Path, capsys):
    with _tmpfs(tmp_path / "store", "size=64k") as root:
        (root / "filler").write_bytes(b"\0" * 60_000)
        with contextlib.suppress(OSError):
            (root / "filler2").write_bytes(b"\0" * 65_536)
        assert _score(tiny_video, tmp_path / "out", root) == 6
    assert "No space left on device" in _error_line(capsys)


# ---- checkpoint metadata: exit 5 ------------------------------------------------------------------------------


@pytest.mark.parametrize("metadata", [
    {"format": FORMAT, "method": "loudness"},
    {"format": FORMAT, "method": "x", "binding": "{not json", "config": "{}", "training": "{}"},
    {"format": FORMAT, "method": "x", "binding": '{"a": 3}', "config": "{}", "training": "{}"},
    {"format": FORMAT, "method": "x", "binding": "[1]", "config": "[]", "training": "{}"},
], ids=["no-binding", "bad-json", "bad-source", "not-an-object"])
def test_malformed_checkpoint_metadata_exits_5(tiny_video: Path, tmp_path: Path, metadata: dict, capsys):
    checkpoint = tmp_path / "bad.safetensors"
    save_file({"w": torch.zeros(1)}, str(checkpoint), metadata=metadata)
    code = main(["score", str(tiny_video), "--checkpoint", str(checkpoint), "--out", str(tmp_path / "out"),
                 "--no-cache", "--progress", "none"])
    assert code == 5
    assert f"{checkpoint}: malformed checkpoint metadata" in _error_line(capsys)


def test_fit_checkpoint_under_a_file_exits_8_before_fitting(tiny_video: Path, tmp_path: Path, capsys):
    (tmp_path / "a-file").write_text("x")
    checkpoint = tmp_path / "a-file" / "model.safetensors"
    assert main(["fit", "--method", "recurrence", "--videos", str(tiny_video), "--out", str(checkpoint),
                 "--no-cache", "--progress", "none"]) == 8
    assert f"{tmp_path / 'a-file'}: the output location exists and is not a folder" in _error_line(capsys)
