"""A corpus of broken and odd media, made with ffmpeg from a 6-s synthetic video: each file gives either a
typed one-line error naming it (exit 3) or clips whose durations match highlights.json."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from avhighlights.core.errors import MediaError
from avhighlights.core.timebase import second_grid
from avhighlights.core.types import ScoreCurve, Segment
from avhighlights.pipeline.probe import probe
from avhighlights.pipeline.render import render_outputs
from avhighlights.pipeline.results import make_doc, read_results
from avhighlights.pipeline.select import SelectionConfig
from avhighlights.pipeline.synth import SyntheticSpec, make_synthetic_video

SEGMENTS = [Segment(0.5, 4.5, 1.0, 1)]  # across the damaged ranges


def _lavfi(target: Path, video: str, *codec: str) -> Path:
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", video, "-f", "lavfi", "-i",
                    "sine=f=440:d=6:r=44100", "-shortest", *codec, "-c:a", "aac", str(target)], check=True)
    return target


def _cut(source: Path, target: Path, keep: float) -> Path:
    data = source.read_bytes()
    target.write_bytes(data[:int(len(data) * keep)])
    return target


def _zeroed(source: Path, target: Path, start: float, length: float) -> Path:
    data = bytearray(source.read_bytes())
    lo, n = int(len(data) * start), int(len(data) * length)
    data[lo:lo + n] = bytes(n)
    target.write_bytes(bytes(data))
    return target


def _build(name: str, good: Path, folder: Path) -> Path:
    """One corpus file (name -> recipe)."""
    recipes = {
        "truncated_60pct.mp4": lambda p: _cut(good, p, 0.6),
        "truncated_97pct.mp4": lambda p: _cut(good, p, 0.97),
        "zeroed_middle_30pct.mp4": lambda p: _zeroed(good, p, 0.35, 0.3),
        "zeroed_first_4k.mp4": lambda p: _zeroed(good, p, 0.0, 4096 / good.stat().st_size),
        "mp4_named.mkv": lambda p: Path(shutil.copy(good, p)),
        "matroska_named.mp4": lambda p: _lavfi(p, "testsrc2=s=160x120:r=25:d=6", "-c:v", "libx264", "-f",
                                              "matroska"),
        "one_by_one.mp4": lambda p: _lavfi(p, "testsrc2=s=16x16:r=25:d=6", "-vf", "scale=1:1", "-c:v", "mpeg4"),
        "odd_321x241.mp4": lambda p: _lavfi(p, "testsrc2=s=321x241:r=25:d=6", "-c:v", "libx264", "-pix_fmt",
                                           "yuv444p"),
        "zero_length.mp4": lambda p: (p.write_bytes(b""), p)[1],
        "audio_only.m4a": lambda p: Path(subprocess.run(
            ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "sine=d=6", "-c:a", "aac", str(p)], check=True)
            and p),
        "text_named.mp4": lambda p: (p.write_text("this is not a video\n"), p)[1],
    }
    return recipes[name](folder / name)


# name -> "error" (must be refused), "valid" (must render correctly) or "either"
CORPUS = {
    "truncated_60pct.mp4": "error", "truncated_97pct.mp4": "either", "zeroed_middle_30pct.mp4": "error",
    "zeroed_first_4k.mp4": "either", "mp4_named.mkv": "valid", "matroska_named.mp4": "valid",
    "one_by_one.mp4": "valid", "odd_321x241.mp4": "valid", "zero_length.mp4": "error", "audio_only.m4a": "error",
    "text_named.mp4": "error",
}


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("broken")
    good = make_synthetic_video(folder / "good.mp4", SyntheticSpec(duration_s=6.0, width=160, height=120))
    return {name: _build(name, good, folder) for name in CORPUS}


def _render(path: Path, out_dir: Path):
    info = probe(path)
    grid = second_grid(info.duration_s)
    doc = make_doc(info, ScoreCurve(np.sin(grid.start_s), grid.start_s, grid.end_s, "hand"), SEGMENTS,
                   SelectionConfig())
    return render_outputs(doc, out_dir, write_reel=False, formats=())


def _seconds(path: Path) -> float:
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=duration",
                          "-of", "csv=p=0", str(path)], check=True, capture_output=True, text=True).stdout
    return float(out.strip())


@pytest.mark.parametrize("name", list(CORPUS))
def test_broken_media_gives_a_typed_error_or_matching_outputs(corpus, name, tmp_path):
    path = corpus[name]
    try:
        report = _render(path, tmp_path / "out")
    except MediaError as exc:
        assert CORPUS[name] in ("error", "either"), f"{name} was refused: {exc}"
        assert exc.exit_code == 3 and str(path) in str(exc) and "\n" not in str(exc)
        assert not list((tmp_path / "out").glob("*.mp4")) if (tmp_path / "out").exists() else True
        return
    assert CORPUS[name] in ("valid", "either"), f"{name} rendered without an error"
    doc = read_results(report.results_json)
    frame_s = float(1 / doc.video.fps)
    for clip in doc.clips:
        assert abs(_seconds(report.out_dir / clip.path) - clip.duration_s) <= frame_s + 1e-3, (name, clip)
