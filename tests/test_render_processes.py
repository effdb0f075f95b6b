"""What writing outputs costs in processes, and the parts that make it cheap: clips a few at a time with results
and errors in clip order, at most three processes per smart-cut clip (its checks run in-process), stills from
one opened source in-process, the plot drawn once per document (real ffmpeg, a small H.264 source)."""

from __future__ import annotations

import dataclasses
import io
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest

from avhighlights.core.errors import ConfigError
from avhighlights.core.timebase import second_grid
from avhighlights.core.types import ScoreCurve, Segment
from avhighlights.pipeline import children, clip_pool, plot, render_checks, thumbs
from avhighlights.pipeline.probe import probe
from avhighlights.pipeline.render import render_outputs
from avhighlights.pipeline.results import make_doc
from avhighlights.pipeline.select import SelectionConfig
from avhighlights.pipeline.synth import SyntheticSpec, make_synthetic_video

# 12-s source, GOP 1 s: clips 1 and 3 hold whole GOPs (head, copy, tail), clip 2 none (one re-encoded part)
SEGMENTS = [Segment(0.5, 3.3, 1.0, 1), Segment(4.2, 4.8, 0.9, 2), Segment(6.3, 9.7, 0.8, 3)]


@pytest.fixture(scope="module")
def doc(tmp_path_factory):
    source = make_synthetic_video(tmp_path_factory.mktemp("src") / "src.mp4",
                                  SyntheticSpec(duration_s=12.0, width=160, height=120, event_times_s=(5.0,)))
    info = probe(source)
    grid = second_grid(info.duration_s)
    return make_doc(info, ScoreCurve(np.cos(grid.start_s), grid.start_s, grid.end_s, "hand"), SEGMENTS,
                    SelectionConfig())


class Spawned:
    """argv of every process started while it is installed (subprocess.Popen is what everything goes through)."""

    def __init__(self, monkeypatch) -> None:
        self.argvs: list[list[str]] = []
        original = subprocess.Popen.__init__
        spawned = self

        def counting_init(popen, args, *rest, **kwargs):
            spawned.argvs.append([str(a) for a in args])
            original(popen, args, *rest, **kwargs)

        monkeypatch.setattr(subprocess.Popen, "__init__", counting_init)

    def writing(self, suffix: str) -> list[list[str]]:
        return [a for a in self.argvs if Path(a[0]).name == "ffmpeg" and any(x.endswith(suffix) for x in a)]


def test_smart_cut_clips_take_at_most_three_processes_each_and_checks_none(doc, tmp_path, monkeypatch):
    spawned = Spawned(monkeypatch)
    measured: list[tuple[str, bool]] = []
    measure = render_checks.measure_written

    def spy(path: Path, *, decode: bool = False):
        measured.append((path.name, decode))
        return measure(path, decode=decode)

    monkeypatch.setattr(render_checks, "measure_written", spy)
    report = render_outputs(doc, tmp_path / "out", write_reel=False, formats=())
    assert len(report.clip_paths) == 3 and not any("re-encoded in full" in n for n in report.notes), report.notes
    parts_runs = spawned.writing(".ts")
    joins = [a for a in spawned.writing(".mp4") if "concat" in a]
    assert len(joins) == 3
    # one run for the re-encoded head and tail together, one for the copy: 2 + 1 + 2
    assert len(parts_runs) == 5, [a[-1] for a in parts_runs]
    for argv in parts_runs:  # every input bounded: ffmpeg would otherwise decode on past a finished part
        assert argv.count("-i") == argv.count("-t") or "copy" in argv, argv
    assert not [a for a in spawned.argvs if any("clip_" in x or ".ts" in x for x in a) and a not in parts_runs + joins]
    # every clip is checked (in-process); those with copied frames are decoded by their check, the other is not
    assert sorted(measured) == sorted((p.name, p.name != "clip_02_00004.20-00004.80.mp4") for p in report.clip_paths)


def test_clips_written_at_once_match_clips_written_one_by_one(doc, tmp_path, monkeypatch):
    together = render_outputs(doc, tmp_path / "together", write_reel=False, formats=())
    monkeypatch.setenv(clip_pool.CPU_ENV, "1")
    alone = render_outputs(doc, tmp_path / "alone", write_reel=False, formats=())
    assert [p.name for p in together.clip_paths] == [p.name for p in alone.clip_paths]
    assert together.notes == alone.notes and together.doc.clips == alone.doc.clips
    for a, b in zip(together.clip_paths, alone.clip_paths, strict=True):
        assert frame_count(a) == frame_count(b)


def frame_count(path: Path) -> int:
    out = subprocess.run(["ffprobe", "-v", "error", "-count_packets", "-select_streams", "v:0", "-show_entries",
                          "stream=nb_read_packets", "-of", "csv=p=0", str(path)], check=True, capture_output=True,
                         text=True).stdout
    return int(out.strip().strip(","))


def test_map_in_order_returns_in_order_raises_the_first_error_and_kills_the_rest():
    def task(i: int) -> int:
        if i == 1:
            time.sleep(0.3)
            raise ValueError("first")
        if i == 3:
            raise KeyError("later, but finished first")
        if i == 2:  # still running when the error surfaces: its child must be killed
            children.run([sys.executable, "-c", "import time; time.sleep(60)"])
        return i * 10

    assert clip_pool.map_in_order(lambda i: i * 10, list(range(6)), workers=3) == [0, 10, 20, 30, 40, 50]
    t0 = time.monotonic()
    with pytest.raises(ValueError, match="first"):
        clip_pool.map_in_order(task, list(range(6)), workers=3)
    assert time.monotonic() - t0 < 20  # the 60-s child was killed
    assert not [t for t in threading.enumerate() if t.name.startswith("avh-clip")]


def test_workers_and_threads_fill_the_cores_without_oversubscribing(monkeypatch):
    monkeypatch.setattr(clip_pool.os, "cpu_count", lambda: 8)
    assert clip_pool.clip_workers(3) == 3 and clip_pool.clip_workers(100) == clip_pool.MAX_CLIP_WORKERS
    assert clip_pool.threads_per_worker(1) == 0 and clip_pool.threads_per_worker(4) == 2
    monkeypatch.setenv(clip_pool.CPU_ENV, "1")
    assert clip_pool.clip_workers(100) == 1
    for bad in ("two", "0", "-1", "1.5"):
        monkeypatch.setenv(clip_pool.CPU_ENV, bad)
        with pytest.raises(ConfigError, match="AVH_CLIP_WORKERS must be a positive integer") as caught:
            clip_pool.clip_workers(100)
        assert caught.value.exit_code == 2


def _rgb(jpeg: bytes) -> np.ndarray:
    with av.open(io.BytesIO(jpeg)) as container:
        return next(container.decode(video=0)).to_ndarray(format="rgb24").astype(np.float64)


def test_stills_open_the_source_once_and_are_ffmpegs_frames(doc, tmp_path, monkeypatch):
    """Many stills cost one opened source (one copy of its index, whatever the count) and no process, and each
    is the frame ffmpeg shows at that time (-ss t -frames:v 1), scaled to the thumbnail width."""
    times_s = [0.0, 2.5, 5.04, 11.99, 30.0]  # the last one past the end: clamped to the last frame
    alone = [thumbs.still_jpeg(doc.video, t) for t in times_s]
    import av

    spawned, opened, real_open = Spawned(monkeypatch), [], av.open
    monkeypatch.setattr(av, "open", lambda *a, **k: opened.append(a) or real_open(*a, **k))
    together = thumbs.stills_jpeg(doc.video, times_s)
    assert together == alone and len(opened) == 1 and spawned.argvs == []
    monkeypatch.undo()
    for t in (2.5, 5.04):
        ffmpeg = subprocess.run(["ffmpeg", "-v", "error", "-ss", f"{t:.3f}", "-i", str(doc.video.path), "-frames:v",
                                 "1", "-vf", "scale=320:-2", "-c:v", "mjpeg", "-q:v", "5", "-f", "image2pipe", "-"],
                                capture_output=True, check=True).stdout
        shown, later = _rgb(ffmpeg), _rgb(thumbs.still_jpeg(doc.video, t + 0.4))
        mine = _rgb(together[times_s.index(t)])
        assert mine.shape == shown.shape and mine.shape[1] == thumbs.THUMB_WIDTH_PX
        assert np.abs(mine - shown).mean() < 5 < np.abs(later - shown).mean()  # JPEG noise vs another frame
    (tmp_path / "not_a_video.mp4").write_bytes(b"not a video")
    broken = dataclasses.replace(doc.video, path=tmp_path / "not_a_video.mp4")
    errors = thumbs.stills_jpeg(broken, [1.0, 2.0])
    assert len(errors) == 2 and all(isinstance(e, thumbs.ThumbnailError) and "no still" in str(e) for e in errors)


def test_the_plot_is_drawn_once_per_document(doc):
    first = plot.plot_png(doc)
    assert plot.plot_png(doc) is first  # scores.png and report.html: one drawing
    other = dataclasses.replace(doc, method="other")
    assert plot.plot_png(other) is not first and plot.plot_png(other).startswith(b"\x89PNG")


def test_a_rotated_sources_still_is_upright_as_ffmpeg_shows_it(tmp_path):
    source = make_synthetic_video(tmp_path / "rot.mp4", SyntheticSpec(duration_s=4.0, width=160, height=96,
                                                                        rotation_deg=90, with_audio=False))
    info = probe(source)
    ffmpeg = subprocess.run(["ffmpeg", "-v", "error", "-ss", "2.000", "-i", str(source), "-frames:v", "1", "-vf",
                             "scale=320:-2", "-c:v", "mjpeg", "-q:v", "5", "-f", "image2pipe", "-"],
                            capture_output=True, check=True).stdout
    mine, shown = _rgb(thumbs.still_jpeg(info, 2.0)), _rgb(ffmpeg)
    assert info.rotation_deg % 180 == 90 and mine.shape == shown.shape == (534, 320, 3)  # portrait, as displayed
    assert np.abs(mine - shown).mean() < 5
