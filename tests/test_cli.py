"""End-to-end command line: score a synthetic video, re-render, bad inputs, exit codes, JSON progress."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from avhighlights.cli.main import main
from avhighlights.pipeline.demo import DEMO_SPEC, event_coverage


def _run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "avhighlights", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


@pytest.fixture(scope="module")
def scored(synthetic_video: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cli_out")
    store = tmp_path_factory.mktemp("store")
    code = main(["score", str(synthetic_video), "--method", "loudness", "--out", str(out), "--store", str(store),
                 "--progress", "none"])
    assert code == 0
    return out / synthetic_video.stem


def test_score_writes_half_the_video_as_clips_and_every_result_file(scored: Path):
    doc = json.loads((scored / "highlights.json").read_text())
    assert doc["schema"] == "avhighlights/highlights/1" and doc["method"] == "loudness"
    assert len(doc["scores"]) == 20
    selected = sum(c["end_s"] - c["start_s"] for c in doc["clips"])
    assert abs(selected - 10.0) <= 1.0
    for name in ("highlights.csv", "highlights.edl", "chapters.vtt", "chapters.ffmeta", "scores.png", "reel.mp4"):
        assert (scored / name).is_file(), name
    for clip in doc["clips"]:
        assert (scored / clip["path"]).is_file()


def test_loudness_finds_the_planted_tone_bursts(scored: Path):
    doc = json.loads((scored / "highlights.json").read_text())
    spans = [(c["start_s"], c["end_s"]) for c in doc["clips"]]
    spec = type(DEMO_SPEC)(duration_s=20.0)  # the synthetic_video fixture: bursts at 3, 11, 16 s for 1.5 s
    assert event_coverage(spans, spec) >= 0.9


def test_render_from_an_edited_json(scored: Path):
    path = scored / "highlights.json"
    doc = json.loads(path.read_text())
    doc["clips"] = doc["clips"][:1]
    path.write_text(json.dumps(doc))
    assert main(["render", str(path), "--progress", "none", "--no-reel"]) == 0
    after = json.loads(path.read_text())
    assert len(after["clips"]) == 1 and (scored / after["clips"][0]["path"]).is_file()


def _run_in_process(capfd, *args: str) -> subprocess.CompletedProcess:
    """`main(args)` with stdout/stderr captured at the file-descriptor level (ffmpeg children included), shaped like
    `_run_cli`'s result: the same checks without a second interpreter start (the module path is run below)."""
    capfd.readouterr()
    code = main(list(args))
    out, err = capfd.readouterr()
    return subprocess.CompletedProcess(["avhighlights", *args], code, out, err)


@pytest.mark.parametrize(
    ("make", "needle", "as_process"),
    [
        (lambda d: d / "missing.mp4", "missing.mp4", True),  # `python -m avhighlights`, as users run it
        (lambda d: _write(d / "notes.mp4", b"just some text, not a video\n"), "notes.mp4", False),
        (lambda d: _write(d / "empty.mp4", b""), "empty.mp4", False),
    ],
)
def test_bad_inputs_exit_3_with_one_line_naming_the_file(tmp_path: Path, capfd, make, needle: str, as_process: bool):
    bad = make(tmp_path)
    args = ("score", str(bad), "--out", str(tmp_path / "out"), "--progress", "none")
    result = _run_cli(*args) if as_process else _run_in_process(capfd, *args)
    assert result.returncode == 3, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and needle in lines[0] and lines[0].startswith("avhighlights: error:")
    assert not (tmp_path / "out").exists()


def test_unknown_method_exits_2(synthetic_video: Path, tmp_path: Path, capfd):
    result = _run_in_process(capfd, "score", str(synthetic_video), "--method", "nope", "--out", str(tmp_path),
                             "--progress", "none")
    assert result.returncode == 2 and "unknown method 'nope'" in result.stderr


def test_json_progress_emits_machine_readable_lines(synthetic_video: Path, tmp_path: Path):
    result = _run_cli("score", str(synthetic_video), "--out", str(tmp_path / "o"), "--store", str(tmp_path / "s"),
                      "--progress", "json", "--no-clips", "--no-reel")
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert any(e["event"] == "progress" for e in events)
    assert events[-1]["event"] == "result" and events[-1]["clips"] >= 1


def test_info_prints_json(synthetic_video: Path):
    result = _run_cli("info", str(synthetic_video), "--json")
    assert result.returncode == 0
    info = json.loads(result.stdout)
    assert info["duration_s"] == pytest.approx(20.0, abs=0.1) and info["has_audio"] is True


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
