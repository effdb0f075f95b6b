"""Rendering clips, reel and result files from synthetic videos, checked with ffprobe/ffmpeg."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from avhighlights.core.errors import MissingFileError
from avhighlights.core.timebase import second_grid
from avhighlights.core.types import ScoreCurve, Segment, VideoInfo
from avhighlights.pipeline.render import render_from_json, render_outputs
from avhighlights.pipeline.render_checks import SourceChangedError
from avhighlights.pipeline.results import make_doc, read_results
from avhighlights.pipeline.select import SelectionConfig
from avhighlights.pipeline.synth import SCENE_COLOURS, SyntheticSpec, make_synthetic_video

FRAME_S = 1 / 25  # the synthetic videos run at 25 fps


def ffprobe_json(path: Path) -> dict:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def rotation_of(stream: dict) -> int:
    rotation = next((int(s["rotation"]) for s in stream.get("side_data_list", []) if "rotation" in s), 0)
    return int(stream.get("tags", {}).get("rotate", rotation)) % 360


def displayed_size(stream: dict) -> tuple[int, int]:
    width, height = stream["width"], stream["height"]
    return (height, width) if rotation_of(stream) in (90, 270) else (width, height)


def info_from_ffprobe(path: Path) -> VideoInfo:
    """A VideoInfo built straight from ffprobe (independent of the project's probe module)."""
    data = ffprobe_json(path)
    video = next(s for s in data["streams"] if s["codec_type"] == "video")
    audio = next((s for s in data["streams"] if s["codec_type"] == "audio"), None)
    width, height = displayed_size(video)
    return VideoInfo(path=path, sha256=sha256(path), duration_s=float(data["format"]["duration"]),
                     fps=Fraction(video["r_frame_rate"]), variable_frame_rate=False, width=width, height=height,
                     rotation_deg=rotation_of(video), video_codec=video["codec_name"], has_audio=audio is not None,
                     audio_codec=audio["codec_name"] if audio else None)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def stream_info(path: Path, kind: str) -> dict | None:
    return next((s for s in ffprobe_json(path)["streams"] if s["codec_type"] == kind), None)


def first_frames_rgb(path: Path, n: int = 2) -> np.ndarray:
    """The first `n` decoded frames as (n, H, W, 3) uint8."""
    video = stream_info(path, "video")
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-frames:v", str(n), "-f", "rawvideo",
                          "-pix_fmt", "rgb24", "-"], check=True, capture_output=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(n, video["height"], video["width"], 3)


def scene_rgb(time_s: float) -> np.ndarray:
    colour = SCENE_COLOURS[int(time_s // 5.0) % len(SCENE_COLOURS)]
    return np.array([int(colour[i:i + 2], 16) for i in (2, 4, 6)], dtype=float)


def corner_rgb(frame: np.ndarray) -> np.ndarray:
    return frame[2:12, 2:12].reshape(-1, 3).mean(axis=0)  # background, away from the moving pattern


def flat_doc(info: VideoInfo, segments: list[Segment]):
    grid = second_grid(info.duration_s)
    curve = ScoreCurve(np.sin(grid.start_s), grid.start_s, grid.end_s, "hand")
    return make_doc(info, curve, segments, SelectionConfig())


SEGMENTS = [Segment(10.0, 13.3, 1.0, 1), Segment(4.96, 6.0, 0.9, 2), Segment(15.5, 17.5, 0.5, 3)]
CLIP_NAMES = ["clip_01_00010.00-00013.30.mp4", "clip_02_00004.96-00006.00.mp4", "clip_03_00015.50-00017.50.mp4"]


@pytest.fixture(scope="module")
def rendered(synthetic_video, tmp_path_factory):
    before = sha256(synthetic_video)
    out_dir = tmp_path_factory.mktemp("render") / "out"
    report = render_outputs(flat_doc(info_from_ffprobe(synthetic_video), SEGMENTS), out_dir)
    return report, before


def test_clips_have_the_requested_span_and_start_frame(rendered, synthetic_video):
    report, _ = rendered
    assert [p.name for p in report.clip_paths] == CLIP_NAMES
    for segment, path in zip(SEGMENTS, report.clip_paths, strict=True):
        video, audio = stream_info(path, "video"), stream_info(path, "audio")
        assert abs(float(video["duration"]) - segment.duration_s) <= FRAME_S + 1e-6, path.name
        assert audio is not None and abs(float(audio["duration"]) - float(video["duration"])) <= FRAME_S
        first = corner_rgb(first_frames_rgb(path, 1)[0])
        assert np.abs(first - scene_rgb(segment.start_s)).max() < 20, (path.name, first)


def test_cut_is_frame_accurate_at_a_scene_change(rendered):
    frames = first_frames_rgb(rendered[0].clip_paths[1], 2)  # clip [4.96, 6.0): frames at 4.96 and 5.00
    assert np.abs(corner_rgb(frames[0]) - scene_rgb(4.96)).max() < 20
    assert np.abs(corner_rgb(frames[1]) - scene_rgb(5.0)).max() < 20


def test_reel_is_the_clips_end_to_end(rendered):
    report, _ = rendered
    clips_s = sum(float(stream_info(p, "video")["duration"]) for p in report.clip_paths)
    reel_video, reel_audio = stream_info(report.reel_path, "video"), stream_info(report.reel_path, "audio")
    assert abs(float(reel_video["duration"]) - clips_s) <= 2 * FRAME_S
    assert abs(float(reel_audio["duration"]) - clips_s) <= 2 * FRAME_S
    first = first_frames_rgb(report.reel_path, 1)[0]  # time order: the 4.96-s clip comes first
    assert np.abs(corner_rgb(first) - scene_rgb(4.96)).max() < 20


def test_result_files_are_complete_and_input_untouched(rendered, synthetic_video):
    report, sha_before = rendered
    assert sha256(synthetic_video) == sha_before
    doc = read_results(report.results_json)
    assert [c.path for c in doc.clips] == CLIP_NAMES and doc.reel == "reel.mp4"
    csv_lines = report.exports["csv"].read_text().splitlines()
    assert csv_lines[0] == "rank,start_s,end_s,duration_s,score,path"
    assert csv_lines[1] == f"1,10.000,13.300,3.300,1,{CLIP_NAMES[0]}"
    assert report.exports["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert report.exports["ffmeta"].read_text().startswith(";FFMETADATA1\n")
    assert sorted(p.name for p in report.out_dir.iterdir()) == sorted(
        [*CLIP_NAMES, "reel.mp4", "highlights.json", "highlights.csv", "highlights.edl", "chapters.vtt",
         "chapters.ffmeta", "scores.png", "report.html", "poster.jpg", ".highlights-outputs.json", "highlights.otio",
         "highlights.fcpxml", "highlights.xml"])  # no staging or temp files left


def test_silent_video_gives_clips_without_audio(silent_video, tmp_path):
    report = render_outputs(flat_doc(info_from_ffprobe(silent_video), [Segment(1.0, 3.0, 1.0, 1)]), tmp_path,
                            formats=())
    for path in (*report.clip_paths, report.reel_path):
        assert stream_info(path, "audio") is None
        assert abs(float(stream_info(path, "video")["duration"]) - 2.0) <= FRAME_S


def test_rotated_portrait_input_keeps_its_displayed_orientation(tmp_path):
    source = make_synthetic_video(tmp_path / "phone.mp4", SyntheticSpec(duration_s=3.0, rotation_deg=90,
                                                                        event_times_s=()))
    info = info_from_ffprobe(source)
    assert (info.width, info.height) == (240, 320)
    for stream_copy in (False, True):
        report = render_outputs(flat_doc(info, [Segment(1.0, 2.0, 1.0, 1)]), tmp_path / f"out{stream_copy}",
                                stream_copy=stream_copy, formats=())
        for path in (*report.clip_paths, report.reel_path):
            assert displayed_size(stream_info(path, "video")) == (240, 320), (stream_copy, path.name)


def test_stream_copy_says_it_cuts_on_keyframes(synthetic_video, tmp_path):
    report = render_outputs(flat_doc(info_from_ffprobe(synthetic_video), [Segment(2.0, 4.0, 1.0, 1)]), tmp_path,
                            stream_copy=True, formats=("csv",))
    assert report.stream_copy and any("keyframe" in note for note in report.notes)
    video = stream_info(report.clip_paths[0], "video")
    assert video["codec_name"] == "h264" and abs(float(video["duration"]) - 2.0) <= 1.0 + FRAME_S


def test_rerender_after_editing_the_json(synthetic_video, tmp_path):
    info = info_from_ffprobe(synthetic_video)
    first = render_outputs(flat_doc(info, [Segment(1.0, 3.0, 1.0, 1), Segment(6.0, 8.0, 0.5, 2)]), tmp_path,
                           formats=("csv",))
    data = json.loads(first.results_json.read_text())
    data["clips"] = [dict(data["clips"][0], end_s=2.4), {"start_s": 11.0, "end_s": 12.0}]  # drop rank 2, add one
    first.results_json.write_text(json.dumps(data))
    again = render_from_json(first.results_json, formats=("csv",))
    names = ["clip_01_00001.00-00002.40.mp4", "clip_02_00011.00-00012.00.mp4"]
    assert [p.name for p in again.clip_paths] == names
    assert sorted(p.name for p in tmp_path.glob("clip_*")) == names  # the old clips are gone
    assert abs(float(stream_info(again.clip_paths[0], "video")["duration"]) - 1.4) <= FRAME_S
    reel_s = float(stream_info(again.reel_path, "video")["duration"])
    assert abs(reel_s - 2.4) <= 2 * FRAME_S
    assert [c.path for c in read_results(again.results_json).clips] == names


def snapshot(folder: Path) -> dict[str, str]:
    return {p.name: sha256(p) for p in sorted(folder.iterdir())}


def test_failed_render_leaves_earlier_outputs_intact(synthetic_video, tmp_path):
    source = shutil.copy(synthetic_video, tmp_path / "copy.mp4")
    info = info_from_ffprobe(Path(source))
    out_dir = tmp_path / "out"
    render_outputs(flat_doc(info, [Segment(1.0, 3.0, 1.0, 1)]), out_dir, formats=("csv",))
    before = snapshot(out_dir)
    edited = flat_doc(info, [Segment(5.0, 7.0, 1.0, 1), Segment(9.0, 10.0, 0.5, 2)])

    Path(source).unlink()  # the input has been deleted since
    with pytest.raises(MissingFileError, match="copy.mp4"):
        render_outputs(edited, out_dir, formats=("csv",))
    assert snapshot(out_dir) == before

    Path(source).write_text("not a video any more\n")  # replaced since: refused before ffmpeg runs
    with pytest.raises(SourceChangedError, match="copy.mp4: the video changed since it was scored"):
        render_outputs(edited, out_dir, formats=("csv",))
    assert snapshot(out_dir) == before  # no staging folder, no temp files, old JSON unchanged


@pytest.mark.data
def test_real_webm_vp8_vorbis(media_dir, tmp_path):
    info = info_from_ffprobe(media_dir / "tears_of_steel_battle_action_70s.webm")
    doc = flat_doc(info, [Segment(30.0, 32.0, 1.0, 1), Segment(31.0, 33.0, 0.5, 2)])  # overlapping (hand edit)
    report = render_outputs(doc, tmp_path / "encoded", formats=("edl",))
    assert [stream_info(p, "video")["codec_name"] for p in report.clip_paths] == ["h264", "h264"]
    assert abs(float(stream_info(report.clip_paths[0], "video")["duration"]) - 2.0) <= 1 / 24
    assert abs(float(stream_info(report.reel_path, "video")["duration"]) - 3.0) <= 2 / 24  # the union, once
    copied = render_outputs(doc, tmp_path / "copied", stream_copy=True, formats=())
    assert [p.suffix for p in copied.clip_paths] == [".mkv", ".mkv"] and copied.reel_path.name == "reel.mkv"
    assert any("does not fit in MP4" in note for note in copied.notes)
    assert stream_info(copied.reel_path, "video")["codec_name"] == "vp8"


def test_vfr_source_gives_a_reel_without_drift(tmp_path):
    """Frames 2-4 s are thinned to every third (VFR); clips across that region keep their spans and the
    reel's audio and video stay the same length."""
    source = make_synthetic_video(tmp_path / "vfr.mp4", SyntheticSpec(duration_s=6.0, variable_frame_rate=True,
                                                                      event_times_s=(1.5,)))
    report = render_outputs(flat_doc(info_from_ffprobe(source), [Segment(0.5, 1.5, 1.0, 1),
                                                                 Segment(2.5, 4.5, 0.9, 2)]), tmp_path / "out",
                            formats=())
    for path, span_s in zip(report.clip_paths, (1.0, 2.0), strict=True):
        assert abs(float(stream_info(path, "video")["duration"]) - span_s) <= 3 * FRAME_S, path.name
    video_s = float(stream_info(report.reel_path, "video")["duration"])
    audio_s = float(stream_info(report.reel_path, "audio")["duration"])
    assert abs(video_s - 3.0) <= 3 * FRAME_S and abs(audio_s - 3.0) <= 2 * FRAME_S
    assert abs(video_s - audio_s) <= 3 * FRAME_S
