"""Render safety (issues #16 and #15): clips that match their JSON, and a renderer that owns its folder.

Each test reproduces one reported failure: a replaced or damaged source, a stretched duration, foreign
files deleted, concurrent runs, debris of killed runs, frames lost on VFR input, stream-copy times and
stale scores after an edit.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from avhighlights.cli.main import main
from avhighlights.core.errors import OutputError
from avhighlights.core.timebase import second_grid
from avhighlights.core.types import ScoreCurve, Segment
from avhighlights.pipeline import outdir
from avhighlights.pipeline.probe import probe
from avhighlights.pipeline.render import render_from_json, render_outputs
from avhighlights.pipeline.results import make_doc, read_results
from avhighlights.pipeline.run import video_out_dir
from avhighlights.pipeline.select import SelectionConfig
from avhighlights.pipeline.synth import SyntheticSpec, make_synthetic_video

FRAME_S = 1 / 25


def ffprobe_streams(path: Path, count: bool = False) -> dict[str, dict]:
    cmd = ["ffprobe", "-v", "error", *(["-count_packets"] if count else []), "-show_streams", "-of", "json", str(path)]
    streams = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)["streams"]
    return {s["codec_type"]: s for s in streams}


def scored_doc(path: Path, segments: list[Segment]):
    info = probe(path)
    grid = second_grid(info.duration_s)
    curve = ScoreCurve(np.sin(grid.start_s) + 1.0, grid.start_s, grid.end_s, "hand")
    return make_doc(info, curve, segments, SelectionConfig())


def render_cli(results: Path, *extra: str) -> int:
    return main(["render", str(results), "--progress", "none", *extra])


def one_error_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


@pytest.fixture(scope="module")
def video8(tmp_path_factory) -> Path:
    """An 8-s 25-fps H.264/AAC synthetic video."""
    return make_synthetic_video(tmp_path_factory.mktemp("safety") / "eight.mp4", SyntheticSpec(duration_s=8.0))


@pytest.fixture
def rendered(video8, tmp_path):
    """A private copy of the video, scored into tmp_path/out with one 2-5 s clip (no reel; formats: csv only)."""
    source = Path(shutil.copy(video8, tmp_path / "talk.mp4"))
    report = render_outputs(scored_doc(source, [Segment(2.0, 5.0, 1.0, 1)]), tmp_path / "out", write_reel=False,
                            formats=("csv",))
    return source, report


def test_replaced_source_is_refused_with_exit_3(rendered, tmp_path, capsys):
    source, report = rendered
    make_synthetic_video(tmp_path / "other.mp4", SyntheticSpec(duration_s=8.0, scene_len_s=2.0))
    os.replace(tmp_path / "other.mp4", source)
    before = sorted(p.name for p in report.out_dir.iterdir())
    assert render_cli(report.results_json) == 3
    line = one_error_line(capsys)
    assert str(source) in line and "changed since it was scored" in line
    assert sorted(p.name for p in report.out_dir.iterdir()) == before


def test_stretched_duration_is_refused(rendered, capsys):
    _, report = rendered
    data = json.loads(report.results_json.read_text())
    data["video"]["duration_s"] = 50.0
    data["clips"] = [{"start_s": 6.0, "end_s": 12.0}]
    report.results_json.write_text(json.dumps(data))
    assert render_cli(report.results_json) == 2
    line = one_error_line(capsys)
    assert "video.duration_s" in line and "50.0" in line
    assert not list(report.out_dir.glob("clip_*06.00-*"))


def test_damaged_middle_fails_with_a_short_decode(video8, tmp_path, capsys):
    damaged = Path(shutil.copy(video8, tmp_path / "damaged.mp4"))
    size = damaged.stat().st_size
    with open(damaged, "r+b") as handle:  # the middle 30 % of the bytes zeroed: the probe still passes
        handle.seek(int(size * 0.35))
        handle.write(b"\0" * int(size * 0.3))
    doc = scored_doc(damaged, [Segment(0.0, 6.0, 1.0, 1)])
    render_outputs(doc, tmp_path / "first", write_clips=False, write_reel=False, formats=())
    assert render_cli(tmp_path / "first" / "highlights.json", "--out", str(tmp_path / "out")) == 3
    line = one_error_line(capsys)
    assert str(damaged) in line and "clip_01_00000.00-00006.00.mp4" in line and "decoded" in line
    assert not list((tmp_path / "out").glob("clip_*"))


def test_render_never_deletes_files_it_did_not_write(rendered, capsys):
    _, report = rendered
    precious = report.out_dir / "precious.mp4"
    also = report.out_dir / "clip_07_holiday.mp4"
    precious.write_bytes(b"my own video")
    also.write_bytes(b"not the renderer's")
    data = json.loads(report.results_json.read_text())
    data["reel"] = "precious.mp4"
    data["clips"][0]["path"] = "clip_07_holiday.mp4"
    report.results_json.write_text(json.dumps(data))
    assert render_cli(report.results_json, "--no-reel") == 0
    assert precious.read_bytes() == b"my own video" and also.read_bytes() == b"not the renderer's"


def test_clips_of_an_earlier_run_of_the_same_source_are_removed(rendered):
    source, report = rendered
    again = render_outputs(scored_doc(source, [Segment(6.0, 7.0, 1.0, 1)]), report.out_dir, formats=("csv",))
    assert sorted(p.name for p in report.out_dir.glob("clip_*")) == [p.name for p in again.clip_paths]


def test_a_second_concurrent_run_into_the_folder_fails_with_exit_8(rendered, capsys):
    _, report = rendered
    before = sorted(p.name for p in report.out_dir.iterdir())
    with outdir.locked(report.out_dir):  # another run holds the folder
        assert render_cli(report.results_json) == 8
    assert "another run" in one_error_line(capsys)
    assert sorted(p.name for p in report.out_dir.iterdir()) == before


def test_another_source_with_the_same_name_gets_its_own_folder(rendered, tmp_path, caplog):
    source, _ = rendered
    root = tmp_path / "results"
    render_outputs(scored_doc(source, [Segment(1.0, 2.0, 1.0, 1)]), root / "talk", formats=())
    other = make_synthetic_video(tmp_path / "b" / "talk.mp4", SyntheticSpec(duration_s=4.0))
    other_info = probe(other)
    with caplog.at_level(logging.WARNING):
        folder = video_out_dir(root, other_info, set())
    assert folder == root / f"talk-{other_info.sha256[:8]}"
    assert "holds the results of another video" in caplog.text
    assert video_out_dir(root, probe(source), set()) == root / "talk"  # the same source keeps its folder
    elsewhere = render_outputs(scored_doc(other, [Segment(1.0, 2.0, 1.0, 1)]), folder, formats=())
    with pytest.raises(OutputError, match="holds the results of another video") as caught:
        render_from_json(elsewhere.results_json, root / "talk", formats=())  # render --out into the other's folder
    assert caught.value.exit_code == 8
    assert read_results(root / "talk" / "highlights.json").video.sha256 != other_info.sha256


RENDER_SCRIPT = """
import sys
from avhighlights.pipeline.render import render_from_json
render_from_json(sys.argv[1], formats=())
"""


def children_of(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture(scope="module")
def long_job(tmp_path_factory):
    """A 20-s source and a document asking for one 18-s clip: slow enough to be killed mid-way."""
    root = tmp_path_factory.mktemp("kill")
    source = make_synthetic_video(root / "long.mp4", SyntheticSpec(duration_s=20.0))
    render_outputs(scored_doc(source, [Segment(1.0, 19.0, 1.0, 1)]), root / "out", write_clips=False,
                   write_reel=False, formats=())
    return root / "out" / "highlights.json"


def start_render_and_wait_for_ffmpeg(results: Path) -> tuple[subprocess.Popen, list[int]]:
    proc = subprocess.Popen([sys.executable, "-c", RENDER_SCRIPT, str(results)], env=os.environ.copy())
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        kids = children_of(proc.pid)
        if kids and list(results.parent.glob(".render-*")):
            return proc, kids
        time.sleep(0.02)
    proc.kill()
    pytest.fail("the render never started ffmpeg")


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM])
def test_killed_render_leaves_no_ffmpeg_and_the_next_run_cleans_up(long_job, signum):
    proc, kids = start_render_and_wait_for_ffmpeg(long_job)
    proc.send_signal(signum)
    assert proc.wait(timeout=30) == (-signal.SIGKILL if signum == signal.SIGKILL else 128 + signal.SIGTERM)
    deadline = time.monotonic() + 5
    while any(running(k) for k in kids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(running(k) for k in kids), "an ffmpeg child outlived the killed render"
    if signum == signal.SIGTERM:
        assert not list(long_job.parent.glob(".render-*"))  # the handler cleaned up
    else:
        assert list(long_job.parent.glob(".render-*"))  # SIGKILL cannot clean up ...
    data = json.loads(long_job.read_text())
    data["clips"] = [{"start_s": 1.0, "end_s": 2.0}]
    long_job.write_text(json.dumps(data))
    render_outputs(read_results(long_job), long_job.parent, write_clips=False, write_reel=False, formats=())
    assert not list(long_job.parent.glob(".render-*"))  # ... the next run does


def make_vfr_source(path: Path) -> Path:
    """5 s at 10 fps, then 5 s at 30 fps (H.264 + AAC), with the real timestamps kept."""
    graph = ("[0:v]split[a][b];[a]trim=0:5,setpts=PTS-STARTPTS,fps=10[a1];[b]trim=5:10,setpts=PTS-STARTPTS[b1];"
             "[a1][b1]concat=n=2:v=1:a=0[v]")
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=s=160x120:r=30:d=10", "-f", "lavfi",
                    "-i", "sine=f=440:d=10:r=44100", "-filter_complex", graph, "-map", "[v]", "-map", "1:a",
                    "-fps_mode", "vfr", "-c:v", "libx264", "-preset", "veryfast", "-c:a", "aac", str(path)],
                   check=True)
    return path


def test_vfr_clips_and_reel_keep_every_source_frame(tmp_path):
    source = make_vfr_source(tmp_path / "vfr.mp4")
    report = render_outputs(scored_doc(source, [Segment(4.0, 6.0, 1.0, 1), Segment(1.0, 2.0, 0.5, 2)]),
                            tmp_path / "out", formats=())
    # source frames: 4-5 s at 10 fps + 5-6 s at 30 fps = 40; 1-2 s = 10; the reel holds both spans
    for path, n_frames, span_s, frame_s in ((report.clip_paths[0], 40, 2.0, 1 / 30),
                                            (report.clip_paths[1], 10, 1.0, 1 / 10),
                                            (report.reel_path, 50, 3.0, 1 / 30)):
        streams = ffprobe_streams(path, count=True)
        assert int(streams["video"]["nb_read_packets"]) == n_frames, path.name
        video_s, audio_s = float(streams["video"]["duration"]), float(streams["audio"]["duration"])
        assert abs(video_s - span_s) <= frame_s + 1e-3 and abs(audio_s - span_s) <= 1 / 30, (path.name, video_s)
        assert abs(video_s - audio_s) <= frame_s + 1e-3, path.name


def test_stream_copy_records_the_times_it_cut(tmp_path):
    source = tmp_path / "gop.mp4"  # keyframes only every 4 s
    make_synthetic_video(tmp_path / "dense.mp4", SyntheticSpec(duration_s=12.0))
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(tmp_path / "dense.mp4"), "-c:v", "libx264", "-g", "100",
                    "-keyint_min", "100", "-sc_threshold", "0", "-c:a", "copy", str(source)], check=True)
    report = render_outputs(scored_doc(source, [Segment(5.0, 7.0, 1.0, 1)]), tmp_path / "out", stream_copy=True)
    [clip] = read_results(report.results_json).clips
    assert clip.start_s == pytest.approx(4.0)  # the keyframe at or before 5 s
    written_s = float(ffprobe_streams(report.clip_paths[0])["video"]["duration"])
    assert abs((clip.end_s - clip.start_s) - written_s) <= FRAME_S
    assert clip.path == f"clip_01_00004.00-{clip.end_s:08.2f}.mp4"
    assert f"1,4.000,{clip.end_s:.3f}," in report.exports["csv"].read_text()
    assert "00:00:04.000 -->" in report.exports["vtt"].read_text()
    assert "00:00:04:00" in report.exports["edl"].read_text()
    assert abs(float(ffprobe_streams(report.reel_path)["video"]["duration"]) - written_s) <= FRAME_S


def test_render_rescores_an_edited_clip_from_the_per_second_scores(rendered):
    _, report = rendered
    data = json.loads(report.results_json.read_text())
    scores = {round(s["start_s"]): s["score"] for s in data["scores"]}
    data["clips"] = [dict(data["clips"][0], end_s=4.0),  # trimmed from 2-5 s: score must follow
                     {"start_s": 6.0, "end_s": 7.0, "score": 0.25}]  # a new clip with a hand-set score
    report.results_json.write_text(json.dumps(data))
    assert render_cli(report.results_json, "--no-reel") == 0
    clips = read_results(report.results_json).clips
    assert clips[0].score == pytest.approx((scores[2] + scores[3]) / 2)
    assert clips[1].score == pytest.approx(scores[6])
    kept = json.loads(report.results_json.read_text())
    kept["clips"][0]["score"] = 9.5  # an unchanged span with a hand-set score keeps it
    report.results_json.write_text(json.dumps(kept))
    assert render_cli(report.results_json, "--no-reel") == 0
    assert read_results(report.results_json).clips[0].score == 9.5


def test_a_negative_zero_start_still_gives_an_owned_clip_name(rendered):
    """Found by the property test: an edited start of -0.0 was named clip_01_-0000.00-..., which the
    ownership pattern did not match, so the clip was never removed again."""
    _, report = rendered
    data = json.loads(report.results_json.read_text())
    data["clips"] = [{"start_s": -0.0, "end_s": 1.0}]
    report.results_json.write_text(json.dumps(data))
    assert render_cli(report.results_json, "--no-reel") == 0
    assert [p.name for p in report.out_dir.glob("clip_*")] == ["clip_01_00000.00-00001.00.mp4"]
    data["clips"] = [{"start_s": 2.0, "end_s": 3.0}]
    report.results_json.write_text(json.dumps(data))
    assert render_cli(report.results_json, "--no-reel") == 0
    assert [p.name for p in report.out_dir.glob("clip_*")] == ["clip_01_00002.00-00003.00.mp4"]
