"""report.html and index.html in a real headless Chromium, opened from disk (file://).

Skips cleanly when no chromium binary is installed (`.ci/run` installs Debian's `chromium`). The
screenshots go to the test's tmp_path and, when $AVH_TEST_ARTIFACTS is set, are copied there.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from chromium_cdp import Chromium, find_chromium

from avhighlights.pipeline.render import render_outputs
from avhighlights.pipeline.results import read_results
from avhighlights.pipeline.run import score_videos
from avhighlights.pipeline.score import ScorerSpec
from avhighlights.pipeline.select import SelectionConfig
from avhighlights.pipeline.synth import SyntheticSpec, make_synthetic_video

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary found (apt-get install -y chromium)")

THUMBS = "[...document.querySelectorAll('img.thumb')].map(i => i.complete && i.naturalWidth)"
PLOT = "[...document.querySelectorAll('img.plot')].map(i => i.naturalWidth)"
VIDEOS = """Promise.all([...document.querySelectorAll('video')].map(v => new Promise(done => {
  v.addEventListener('loadeddata', () => done(v.videoWidth)); v.addEventListener('error', () => done(-1));
  setTimeout(() => done(-2), 20000); v.preload = 'auto'; v.load(); })))"""  # first frame decoded -> its width


def keep_artifact(path: Path) -> None:
    folder = os.environ.get("AVH_TEST_ARTIFACTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, Path(folder) / path.name)


def test_report_and_index_open_cleanly_in_chromium(tmp_path):
    video = make_synthetic_video(tmp_path / "match day #1.mp4",
                                 SyntheticSpec(duration_s=10.0, event_times_s=(1.0, 4.0, 8.0), event_len_s=1.0))
    [result] = score_videos([video], ScorerSpec(method="loudness"), tmp_path / "out", store=None,
                            selection=SelectionConfig(top_ratio=0.5, min_clip_s=2.0))
    doc = read_results(result.results_json)
    assert len(doc.clips) >= 2
    sources_only = render_outputs(doc, tmp_path / "no clips", write_clips=False, write_reel=False)
    report_png, index_png = tmp_path / "report_html.png", tmp_path / "index_html.png"
    with Chromium(CHROMIUM) as browser:
        report = browser.open((result.out_dir / "report.html").as_uri(), (THUMBS, PLOT, VIDEOS), report_png)
        index = browser.open((tmp_path / "out" / "index.html").as_uri(), (THUMBS,), index_png)
        no_clips = browser.open((sources_only.out_dir / "report.html").as_uri(), (VIDEOS,))
    for png in (report_png, index_png):
        keep_artifact(png)
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert report.errors == [] and index.errors == []
    thumbs = report.values[THUMBS]
    assert len(thumbs) == len(doc.clips) and all(width == 320 for width in thumbs)  # decoded, 320 px wide
    assert report.values[PLOT] == [1600]
    widths = report.values[VIDEOS]  # every clip and the reel play from their relative links
    assert widths == [320] * (len(doc.clips) + 1)
    assert index.values[THUMBS] == [320]  # the poster, by relative link
    assert no_clips.errors == [] and no_clips.values[VIDEOS] == [320] * len(doc.clips)  # the source's spans
