"""Progress: JSON events that name the video, JSON errors, tqdm bars with counts/rate/ETA, extractor progress that
moves during extraction, and progress while videos or a library are probed."""

from __future__ import annotations

import io
import json
import shutil
import time

import pytest

from avhighlights.cli.main import main
from avhighlights.extractors import create_extractor
from avhighlights.pipeline.extract import extract_features
from avhighlights.pipeline.fit_cache import library_infos
from avhighlights.pipeline.probe import probe
from avhighlights.pipeline.progress import Progress, report_count


def _events(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]  # every line must be JSON


@pytest.fixture(scope="module")
def json_run(synthetic_video, tmp_path_factory):
    """One `score --progress json` run on the 20-s synthetic video; (exit code, stderr events)."""
    out = tmp_path_factory.mktemp("progress_out")
    capture = pytest.MonkeyPatch()
    stream = io.StringIO()
    capture.setattr("sys.stderr", stream)
    try:
        code = main(["score", str(synthetic_video), "--method", "loudness", "--out", str(out), "--no-cache",
                     "--no-clips", "--no-reel", "--progress", "json"])
    finally:
        capture.undo()
    return code, _events(stream.getvalue())


def test_every_json_event_names_the_video(json_run, synthetic_video):
    code, events = json_run
    assert code == 0 and len(events) >= 5
    for event in events:
        assert event["video"] == str(synthetic_video) and event["video_name"] == synthetic_video.name, event
    assert {"probe", "features:loudness", "features"} <= {e.get("stage") for e in events}
    assert [e for e in events if e["event"] == "result"][0]["clips"] >= 1


def test_extractor_progress_moves_in_seconds_of_video(json_run, synthetic_video):
    _, events = json_run
    loudness = [e for e in events if e.get("stage") == "features:loudness"]
    middle = [e for e in loudness if 0.0 < e["fraction"] < 1.0]
    assert len(middle) >= 5  # per batch, not 0 -> 100 %
    assert all(e["unit"] == "s of video" and e["total"] == pytest.approx(20.0, abs=0.1) for e in loudness)
    done = [e["done"] for e in loudness]
    assert done == sorted(done) and done[0] == 0.0 and loudness[-1]["fraction"] == 1.0


def test_json_error_event_and_exit_code(tmp_path, capsys):
    missing = tmp_path / "missing.mp4"
    code = main(["score", str(missing), "--out", str(tmp_path / "out"), "--progress", "json"])
    assert code == 3
    events = _events(capsys.readouterr().err)
    error = events[-1]
    assert error["event"] == "error" and error["exit_code"] == 3
    assert error["video"] == str(missing) and error["video_name"] == "missing.mp4"
    assert "missing.mp4" in error["error"]


def test_plain_error_stays_one_line(tmp_path, capsys):
    missing = tmp_path / "missing.mp4"
    assert main(["score", str(missing), "--out", str(tmp_path / "out"), "--progress", "none"]) == 3
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("avhighlights: error: ") and "missing.mp4" in lines[0]


def test_bar_shows_counts_rate_and_eta():
    stream = io.StringIO()
    progress = Progress("bar", stream=stream, video="talk.mp4")
    for done in (0, 5, 10, 15):
        progress.count("features:panns", done, 40, "s of video")
        time.sleep(0.12)  # tqdm redraws at most every 0.1 s
    text = stream.getvalue()
    assert "15/40" in text  # counts
    assert "s of video/s" in text  # rate, in the unit of work
    assert "<" in text and "[00:" in text  # elapsed<remaining (ETA)
    assert "features:panns [talk.mp4]" in text
    progress.close()


def test_fraction_bar_and_plain_functions_stay_compatible():
    stream = io.StringIO()
    progress = Progress("bar", stream=stream)
    progress("fit:train", 0.0)
    time.sleep(0.12)
    progress("fit:train", 0.25)
    progress.message("a line")
    assert " 25%|" in stream.getvalue() and "<" in stream.getvalue() and "a line" in stream.getvalue()
    calls = []
    report_count(lambda stage, fraction: calls.append((stage, fraction)), "probe", 3, 12, "files")
    assert calls == [("probe", 0.25)]


@pytest.fixture(scope="module")
def silent_info(silent_video):
    return probe(silent_video)


@pytest.mark.parametrize("name, overrides", [
    ("loudness", {}),
    ("logmel", {"chunk_s": 1.0}),
    ("efficientat_mn04", {"random_init": True, "batch_size": 2}),  # audio blocks, reported after each batch
    ("mobilenet_v1_025", {"random_init": True, "batch_size": 2}),  # frame batches
])
def test_each_extractor_reports_per_batch(silent_info, name, overrides):
    calls = []
    extractor = create_extractor(name, overrides, device="cpu")
    extract_features(silent_info, [extractor], progress=lambda s, f: calls.append((s, f)))  # a plain ProgressFn
    fractions = [f for s, f in calls if s == f"features:{name}"]
    assert fractions[0] == 0.0 and fractions[-1] == 1.0 and fractions == sorted(fractions)
    assert len([f for f in fractions if 0 < f < 1]) >= 2, fractions
    assert fractions.count(1.0) == 1


def test_library_probe_reports_each_file(silent_video, tmp_path):
    library = tmp_path / "library"
    library.mkdir()
    shutil.copy(silent_video, library / "a.mp4")
    stream = io.StringIO()
    library_infos([str(library)], tmp_path / "fits", Progress("json", stream=stream))
    events = [e for e in _events(stream.getvalue()) if e.get("stage") == "probe library"]
    assert [(e["done"], e["total"], e["unit"]) for e in events] == [(0, 1, "files"), (1, 1, "files")]
    assert events[0]["video_name"] == "a.mp4"
