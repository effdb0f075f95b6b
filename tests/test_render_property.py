"""Property: any edit of highlights.json gives either a typed one-line error (exit 2 or 3) or clips whose
files last what the JSON says (random deletions, reorders, start/end changes within and beyond the video,
overlaps). Few examples on a short synthetic video: ffmpeg is the expensive part."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from avhighlights.cli.main import main
from avhighlights.core.timebase import second_grid
from avhighlights.core.types import ScoreCurve, Segment
from avhighlights.pipeline.probe import probe
from avhighlights.pipeline.render import render_outputs
from avhighlights.pipeline.results import make_doc, read_results
from avhighlights.pipeline.select import SelectionConfig
from avhighlights.pipeline.synth import SyntheticSpec, make_synthetic_video

DURATION_S = 6.0
FRAME_S = 1 / 25


@pytest.fixture(scope="module")
def scored(tmp_path_factory) -> Path:
    """A 6-s 160x120 video scored (without media) into a folder; returns its highlights.json."""
    root = tmp_path_factory.mktemp("property")
    source = make_synthetic_video(root / "short.mp4", SyntheticSpec(duration_s=DURATION_S, width=160, height=120))
    info = probe(source)
    grid = second_grid(info.duration_s)
    doc = make_doc(info, ScoreCurve(np.cos(grid.start_s), grid.start_s, grid.end_s, "hand"),
                   [Segment(1.0, 3.0, 1.0, 1), Segment(4.0, 5.5, 0.5, 2)], SelectionConfig())
    return render_outputs(doc, root / "out", write_clips=False, write_reel=False, formats=()).results_json


def _seconds(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.floats(min_value=lo, max_value=hi, allow_nan=False).map(lambda t: round(t, 2))


# mostly inside the video, sometimes before its start, beyond its end, empty or reversed
starts = st.one_of(_seconds(0.0, DURATION_S - 0.2), _seconds(0.0, DURATION_S - 0.2), _seconds(-1.0, DURATION_S + 1))
lengths = st.one_of(_seconds(0.1, 2.5), _seconds(0.1, 2.5), _seconds(-1.0, 3.0))
clip_edit = st.builds(
    lambda start, length, extra: {"start_s": start, "end_s": round(start + length, 2), **extra}, starts, lengths,
    st.fixed_dictionaries({}, optional={"rank": st.integers(min_value=1, max_value=4),
                                        "score": st.floats(min_value=-2, max_value=2, allow_nan=False)}))


def video_seconds(path: Path) -> float:
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=duration",
                          "-of", "csv=p=0", str(path)], check=True, capture_output=True, text=True).stdout
    return float(out.strip())


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(clip_edit, max_size=3), keep=st.lists(st.booleans(), min_size=2, max_size=2),
       reorder=st.booleans())
def test_any_edit_gives_a_typed_error_or_clips_matching_the_json(scored, edits, keep, reorder):
    data = json.loads(scored.read_text())
    clips = [c for c, k in zip(data["clips"], keep, strict=False) if k] + edits
    data["clips"] = clips[::-1] if reorder else clips
    scored.write_text(json.dumps(data))
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        code = main(["render", str(scored), "--no-reel", "--progress", "none"])
    event(f"exit {code}")
    if code != 0:
        lines = stderr.getvalue().strip().splitlines()
        assert code in (2, 3) and len(lines) == 1 and lines[0].startswith("avhighlights: error: "), (code, lines)
        assert str(scored) in lines[0] or "short.mp4" in lines[0], lines
        return
    doc = read_results(scored)
    assert len(doc.clips) == len(clips)
    for clip in doc.clips:
        written_s = video_seconds(scored.parent / clip.path)
        assert abs(written_s - (clip.end_s - clip.start_s)) <= FRAME_S + 1e-3, (clip, written_s)
    assert sorted(p.name for p in scored.parent.glob("clip_*")) == sorted(c.path for c in doc.clips)  # no orphans
