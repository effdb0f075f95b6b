"""Smart-cut clips and reel checked frame by frame against the source (real ffmpeg/ffprobe, small videos).

Every written clip must decode to exactly the source's frames of its span (each frame matches the source
frame at its time by PSNR, and matches it better than its neighbours), be as long as its span within one
frame, and have audio that starts and ends with its video within one frame; the reel must be the clips end
to end. Sources: 30 fps GOP 60, 25 fps with B-frames (pyramid), VFR, and a VP8 webm (full re-encode).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from avhighlights.core.timebase import second_grid
from avhighlights.core.types import ScoreCurve, Segment
from avhighlights.pipeline import encoder
from avhighlights.pipeline.frame_times import _clean_keyframes, read_timeline
from avhighlights.pipeline.probe import probe
from avhighlights.pipeline.render import render_outputs
from avhighlights.pipeline.results import make_doc
from avhighlights.pipeline.select import SelectionConfig
from avhighlights.pipeline.smart_cut import plan_parts

SIZE = (160, 120)
MATCH_PSNR_DB = 32.0  # a re-encoded frame against its source frame (neighbours of testsrc2 score ~20-26 dB)
# a cut inside GOPs at both ends, one without a whole GOP (re-encoded as one part), one to the video's end
SEGMENTS = [Segment(0.9, 5.1, 1.0, 1), Segment(5.4, 5.9, 0.7, 3), Segment(6.0, 8.0, 0.5, 2)]


def make_source(path: Path, fps: int, video_args: list[str], vfr: bool = False, audio: list[str] | None = None) -> Path:
    """8 s of testsrc2 (every frame differs) with a sine; `vfr`: 10 fps for 0-5 s, then `fps`."""
    inputs = ["-f", "lavfi", "-i", f"testsrc2=s={SIZE[0]}x{SIZE[1]}:r={fps}:d=8", "-f", "lavfi", "-i",
              "sine=f=440:d=8:r=44100"]
    graph = (["-filter_complex", "[0:v]split[a][b];[a]trim=0:5,setpts=PTS-STARTPTS,fps=10[a1];"
              "[b]trim=5:8,setpts=PTS-STARTPTS[b1];[a1][b1]concat=n=2:v=1:a=0[v]", "-map", "[v]", "-map", "1:a",
              "-fps_mode", "vfr"] if vfr else ["-map", "0:v", "-map", "1:a"])
    subprocess.run(["ffmpeg", "-v", "error", "-y", *inputs, *graph, *video_args,
                    *(audio or ["-c:a", "aac"]), str(path)], check=True)
    return path


X264 = ["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-sc_threshold", "0"]
SOURCES = {
    "30fps_gop60": (30, [*X264, "-g", "60", "-keyint_min", "60"], False, ".mp4", None),
    "25fps_bframes": (25, [*X264, "-g", "50", "-bf", "3", "-b_strategy", "0", "-x264-params", "b-pyramid=normal"],
                      False, ".mp4", None),
    "vfr": (30, [*X264, "-g", "20"], True, ".mp4", None),
    "webm_vp8": (25, ["-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-g", "50", "-b:v", "1M"], False,
                 ".webm", ["-c:a", "libvorbis"]),
}


def frame_times_s(path: Path) -> np.ndarray:
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "frame=pts_time",
                          "-of", "csv=p=0", str(path)], check=True, capture_output=True, text=True).stdout
    return np.array(sorted(float(x.strip(",")) for x in out.split()))


def gray_frames(path: Path) -> np.ndarray:
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:v:0", "-fps_mode", "passthrough",
                          "-f", "rawvideo", "-pix_fmt", "gray", "-"], check=True, capture_output=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, SIZE[1], SIZE[0]).astype(np.float64)


def by_start(paths: tuple[Path, ...]) -> list[Path]:
    return sorted(paths, key=lambda p: float(p.stem.split("_")[2].split("-")[0]))  # clip_RR_SSSSS.SS-EEEEE.EE


def psnr_db(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a - b) ** 2).mean())
    return 99.0 if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def streams(path: Path) -> dict[str, dict]:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-of", "json", str(path)], check=True,
                         capture_output=True, text=True).stdout
    return {s["codec_type"]: s for s in json.loads(out)["streams"]}


def assert_frames_of(written: np.ndarray, source: np.ndarray, first: int, label: str) -> int:
    """Frame i of `written` is source frame first+i; returns how many are bit-exact (copied, not re-encoded)."""
    assert len(written) >= 1 and first + len(written) <= len(source), label
    scores = [psnr_db(frame, source[first + i]) for i, frame in enumerate(written)]
    assert min(scores) >= MATCH_PSNR_DB, (label, int(np.argmin(scores)), min(scores))
    for i in (0, len(written) - 1):  # the cut frames: the right ones, not their neighbours
        for j in (first + i - 1, first + i + 1):
            if 0 <= j < len(source):
                assert psnr_db(written[i], source[j]) < scores[i] - 3.0, (label, i, j)
    return sum(s == 99.0 for s in scores)


SLOW_SOURCES = {"25fps_bframes", "webm_vp8"}  # the 30-fps source has B-frames too; webm: also test_render's data test


@pytest.fixture(scope="module", params=[pytest.param(name, marks=[pytest.mark.slow] if name in SLOW_SOURCES else [])
                                        for name in SOURCES])
def rendered(request, tmp_path_factory):
    fps, video_args, vfr, suffix, audio = SOURCES[request.param]
    root = tmp_path_factory.mktemp(request.param)
    source = make_source(root / f"source{suffix}", fps, video_args, vfr, audio)
    info = probe(source)
    grid = second_grid(info.duration_s)
    doc = make_doc(info, ScoreCurve(np.cos(grid.start_s), grid.start_s, grid.end_s, "hand"), SEGMENTS,
                   SelectionConfig())
    return request.param, source, render_outputs(doc, root / "out", formats=())


def test_every_clip_holds_exactly_the_source_frames_of_its_span(rendered):
    name, source, report = rendered
    times_s, source_frames = frame_times_s(source), gray_frames(source)
    exact = 0
    for segment, path in zip(sorted(SEGMENTS, key=lambda s: s.start_s), by_start(report.clip_paths), strict=True):
        first = int(np.searchsorted(times_s, segment.start_s - 1e-3))
        last = int(np.searchsorted(times_s, segment.end_s - 1e-3))
        written = gray_frames(path)
        assert len(written) == last - first, (name, path.name, len(written), last - first)
        exact += assert_frames_of(written, source_frames, first, f"{name} {path.name}")
        video, audio = streams(path)["video"], streams(path)["audio"]
        longest_frame_s = float(np.diff(times_s[max(first - 1, 0):last + 1]).max())
        assert abs(float(video["duration"]) - segment.duration_s) <= longest_frame_s + 1e-3, (name, path.name)
        video_start, audio_start = float(video["start_time"]), float(audio["start_time"])
        assert abs(video_start - audio_start) < longest_frame_s, (name, path.name, video_start, audio_start)
        video_end, audio_end = video_start + float(video["duration"]), audio_start + float(audio["duration"])
        assert abs(video_end - audio_end) < longest_frame_s, (name, path.name, video_end, audio_end)
    smart = not any("re-encoded in full" in note for note in report.notes)
    assert smart == (name != "webm_vp8"), report.notes  # webm sources take the full re-encode
    assert (exact > 0) == smart  # copied frames decode bit-exact; re-encoded ones never do


def test_reel_is_the_clips_end_to_end(rendered):
    name, source, report = rendered
    clip_frames = [gray_frames(p) for p in by_start(report.clip_paths)]
    reel = gray_frames(report.reel_path)
    assert len(reel) == sum(len(c) for c in clip_frames), name
    at = 0
    for frames in clip_frames:  # the boundaries: each clip's first and last frame where the sum says
        for i in (0, len(frames) - 1):
            assert psnr_db(reel[at + i], frames[i]) >= MATCH_PSNR_DB, (name, at, i)
        at += len(frames)
    clips_s = sum(float(streams(p)["video"]["duration"]) for p in report.clip_paths)
    reel_streams = streams(report.reel_path)
    assert abs(float(reel_streams["video"]["duration"]) - clips_s) <= 1 / 25, name
    assert abs(float(reel_streams["audio"]["duration"]) - clips_s) <= 1 / 25, name


def test_clean_keyframes_exclude_open_gop_leading_pictures():
    # decode order: I0 P3 B1 B2 | I6 B4 B5 P9 (open GOP: B4, B5 show before I6) | I10 ...
    pts = np.array([0, 3, 1, 2, 6, 4, 5, 9, 7, 8, 10, 11], float)
    keys = np.array([1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0], bool)
    assert list(_clean_keyframes(pts, keys)) == [0, 10]


def test_plan_cuts_on_clean_keyframes_only(tmp_path):
    source = make_source(tmp_path / "s.mp4", 30, [*X264, "-g", "60", "-keyint_min", "60"])
    timeline = read_timeline(probe(source))
    assert np.allclose(timeline.clean_keyframe_s, [0, 2, 4, 6])
    parts = plan_parts(0.9, 5.1, timeline)
    assert [(p.start_s, p.end_s, p.n_frames, p.copy) for p in parts] == [(0.9, 2.0, 33, False), (2.0, 4.0, 60, True),
                                                                       (4.0, 5.1, 33, False)]
    assert plan_parts(2.5, 3.5, timeline) is None  # no whole GOP inside: nothing to copy


def test_the_chosen_encoder_works_and_the_cpu_can_be_forced(monkeypatch):
    encoder.video_encoder.cache_clear()
    try:
        chosen = encoder.video_encoder()
        assert chosen in (encoder.LIBX264, encoder.NVENC) and encoder._encoder_works(chosen)
        monkeypatch.setenv(encoder.ENCODER_ENV, "libx264")
        encoder.video_encoder.cache_clear()
        assert encoder.video_encoder() is encoder.LIBX264
    finally:
        encoder.video_encoder.cache_clear()


@pytest.mark.gpu
def test_nvenc_is_used_where_it_works():
    encoder.video_encoder.cache_clear()
    assert encoder.video_encoder() is encoder.NVENC  # on the GPU machine (ffmpeg built with NVENC)
