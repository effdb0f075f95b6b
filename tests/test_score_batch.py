"""`avhighlights score` on folders and manifests: a failed video is one line and a batch.json row, the others are
written, exit 9; one progress line per video with an ETA; selection in user terms and the flat-score warning
reach highlights.json."""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path

import pytest

from avhighlights.cli.main import main
from avhighlights.core.errors import EXIT_PARTIAL_FAILURE, ConfigError
from avhighlights.pipeline.batch import BatchRow, batch_exit_code, collect_videos

PROGRESS_LINE = re.compile(r"^\[(\d)/3\] (\S+) (ok|failed) \d+\.\d s, ETA (\d+ s|\?)$")


@pytest.fixture(scope="module")
def batch_run(synthetic_video: Path, silent_video: Path, tmp_path_factory):
    """A folder with a good video, a silent one in a sub-folder (flat loudness) and a broken one, scored once."""
    folder = tmp_path_factory.mktemp("batch_in")
    (folder / "events.mp4").symlink_to(synthetic_video)
    (folder / "sub").mkdir()
    (folder / "sub" / "quiet.mkv").symlink_to(silent_video)
    (folder / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 truncated")
    (folder / "notes.txt").write_text("not a video suffix: ignored\n")
    out, err = tmp_path_factory.mktemp("batch_out"), io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["score", str(folder), "--out", str(out), "--store", str(tmp_path_factory.mktemp("store")),
                     "--target-s", "6", "--pad-s", "0.5", "--no-clips", "--no-reel", "--progress", "bar"])
    return code, folder, out, err.getvalue().replace("\r", "\n").splitlines()


def test_folder_batch_writes_the_good_videos_and_exits_9(batch_run):
    code, folder, out, _ = batch_run
    assert code == EXIT_PARTIAL_FAILURE
    summary = json.loads((out / "batch.json").read_text())
    rows = {Path(r["video"]).name: r for r in summary["videos"]}
    assert (summary["n_videos"], summary["ok"], summary["failed"], summary["exit_code"]) == (3, 2, 1, 9)
    assert rows["broken.mp4"]["status"] == "failed" and rows["broken.mp4"]["exit_code"] == 3
    assert rows["broken.mp4"]["error"] and rows["broken.mp4"]["out_dir"] is None
    assert rows["events.mp4"]["status"] == "ok" and (out / "events" / "highlights.json").is_file()
    assert rows["quiet.mkv"]["status"] == "ok" and (out / "quiet" / "highlights.json").is_file()
    assert not (out / "broken").exists()


def test_target_and_flat_warning_reach_highlights_json(batch_run):
    _, _, out, _ = batch_run
    doc = json.loads((out / "events" / "highlights.json").read_text())
    selected_s = sum(c["end_s"] - c["start_s"] for c in doc["clips"])
    assert doc["selection"]["target_s"] == 6.0 and doc["selection"]["mode"] == "target_s"
    assert 4.0 <= selected_s <= 6.0 + 1e-6 and doc["warnings"] == []
    assert min(c["score"] for c in doc["clips"]) > min(s["score"] for s in doc["scores"])
    quiet = json.loads((out / "quiet" / "highlights.json").read_text())
    assert len(quiet["warnings"]) == 1 and "flat" in quiet["warnings"][0]
    summary = json.loads((out / "batch.json").read_text())
    assert [r["warnings"] for r in summary["videos"] if r["video"].endswith("quiet.mkv")] == [quiet["warnings"]]


def test_one_progress_line_per_video_then_failures_and_warnings(batch_run):
    _, folder, _, err = batch_run
    progress = [m.groups() for m in map(PROGRESS_LINE.match, err) if m]
    # find_videos order: sorted paths, so broken.mp4, events.mp4, sub/quiet.mkv; no ETA before a video was scored
    assert [g[:3] for g in progress] == [("1", "broken.mp4", "failed"), ("2", "events.mp4", "ok"),
                                         ("3", "quiet.mkv", "ok")]
    assert progress[0][3] == "?" and progress[1][3].endswith(" s") and progress[2][3] == "0 s"
    failed = [line for line in err if line.startswith("failed: ")]
    assert len(failed) == 1 and failed[0].startswith(f"failed: {folder / 'broken.mp4'}: ")
    warnings = [line for line in err if line.startswith("warning: ")]
    assert len(warnings) == 1 and "quiet.mkv" in warnings[0] and "flat" in warnings[0]


def test_manifest_entries_resolve_against_its_folder(tmp_path: Path):
    (tmp_path / "clips" / "deep").mkdir(parents=True)
    for name in ("clips/a.mp4", "clips/deep/b.webm", "c.mov"):
        (tmp_path / name).write_bytes(b"")
    manifest = tmp_path / "list.txt"
    manifest.write_text(f"# my videos\nclips/a.mp4\n\n   c.mov  \n{tmp_path / 'clips'}\n# clips/skipped.mp4\n")
    found = collect_videos([], [manifest])
    assert found == [tmp_path / "clips/a.mp4", tmp_path / "c.mov", tmp_path / "clips/deep/b.webm"]
    (tmp_path / "list.json").write_text(json.dumps({"videos": ["c.mov"]}))
    assert collect_videos([], [tmp_path / "list.json"]) == [tmp_path / "c.mov"]
    with pytest.raises(ConfigError):
        collect_videos([], [])
    with pytest.raises(ConfigError):
        collect_videos([], [tmp_path / "missing.txt"])


def test_manifest_of_only_bad_media_exits_3_with_a_summary(tmp_path: Path, capsys):
    (tmp_path / "one.mp4").write_bytes(b"garbage")
    (tmp_path / "list.txt").write_text("one.mp4\ntwo.mp4\n")
    code = main(["score", "--manifest", str(tmp_path / "list.txt"), "--out", str(tmp_path / "out"),
                 "--progress", "none"])
    assert code == 3
    summary = json.loads((tmp_path / "out" / "batch.json").read_text())
    assert [r["status"] for r in summary["videos"]] == ["failed", "failed"]
    err = capsys.readouterr().err
    assert err.count("failed: ") == 2 and "two.mp4" in err


def test_no_input_and_clashing_thresholds_are_usage_errors(tmp_path: Path):
    assert main(["score", "--out", str(tmp_path)]) == 2
    with pytest.raises(SystemExit) as exc:
        main(["score", "x.mp4", "--out", str(tmp_path), "--threshold", "1", "--threshold-quantile", "0.9"])
    assert exc.value.code == 2


def test_exit_code_rules():
    ok, media, store = BatchRow("a", "ok"), BatchRow("b", "failed", exit_code=3), BatchRow("c", "failed", exit_code=6)
    assert batch_exit_code([ok, ok]) == 0 and batch_exit_code([ok, media]) == EXIT_PARTIAL_FAILURE
    assert batch_exit_code([media, media]) == 3 and batch_exit_code([media, store]) == 1
