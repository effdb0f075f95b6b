"""report.html, the batch index.html and scores.png, from a real scored synthetic video."""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import re
from pathlib import Path
from urllib.parse import unquote

import matplotlib.pyplot as plt
import numpy as np
import pytest
from PIL import Image

from avhighlights.core.types import ScoreCurve
from avhighlights.pipeline import plot
from avhighlights.pipeline.index_html import write_index
from avhighlights.pipeline.render import render_outputs
from avhighlights.pipeline.report_facts import hms, is_flat, threshold_score
from avhighlights.pipeline.results import ClipEntry, read_results
from avhighlights.pipeline.run import render_results, score_videos
from avhighlights.pipeline.score import ScorerSpec
from avhighlights.pipeline.select import SelectionConfig
from avhighlights.pipeline.synth import SyntheticSpec, make_synthetic_video

NASTY_STEM = "cut \"A\" <b>&'x'"
THUMB_RE = re.compile(r'<img class="thumb"[^>]*src="data:image/jpeg;base64,([A-Za-z0-9+/=]+)"')


@pytest.fixture(scope="module")
def scored(tmp_path_factory) -> Path:
    """OUT/<nasty name>/ of an 8-s synthetic video with loud events at 1 s and 5 s, scored by loudness."""
    root = tmp_path_factory.mktemp("report")
    video = make_synthetic_video(root / f"{NASTY_STEM}.mp4",
                                 SyntheticSpec(duration_s=8.0, event_times_s=(1.0, 5.0), event_len_s=1.0))
    [result] = score_videos([video], ScorerSpec(method="loudness"), root / "out", store=None,
                            selection=SelectionConfig(top_ratio=0.5, min_clip_s=2.0))
    return result.out_dir


def page_of(folder: Path) -> str:
    return (folder / "report.html").read_text(encoding="utf-8")


def test_report_embeds_one_decodable_still_per_clip(scored):
    doc, page = read_results(scored / "highlights.json"), page_of(scored)
    stills = THUMB_RE.findall(page)
    assert len(doc.clips) >= 2 and len(stills) == len(doc.clips)
    for data in stills:
        image = Image.open(io.BytesIO(base64.b64decode(data)))
        assert image.format == "JPEG" and image.size == (320, 240)
    assert Image.open(scored / "poster.jpg").size == (320, 240)


def test_report_takes_stills_for_the_best_ranked_clips_only(scored, tmp_path, monkeypatch):
    from avhighlights.pipeline import report_html

    doc = read_results(scored / "highlights.json")
    assert len(doc.clips) >= 2
    monkeypatch.setattr(report_html, "REPORT_STILLS", 1)
    asked = []
    real = report_html.stills_jpeg
    monkeypatch.setattr(report_html, "stills_jpeg", lambda info, times_s: asked.extend(times_s) or real(info, times_s))
    page = report_html.write_report(doc, tmp_path / "report.html").read_text(encoding="utf-8")
    best = min(doc.clips, key=lambda clip: clip.rank)
    assert asked == [report_html.best_second_s(doc, best)]  # one still taken: the rank-1 clip's
    assert len(THUMB_RE.findall(page)) == 1 and 'alt="clip 1 at' in page
    assert page.count("stills for the 1 best clips only") == len(doc.clips) - 1
    assert "no still for clip" not in page  # the budget is not a failure
    assert Image.open(tmp_path / "poster.jpg").size == (320, 240)


def test_report_table_players_and_escaping(scored):
    doc, page = read_results(scored / "highlights.json"), page_of(scored)
    for clip in doc.clips:
        assert f"<td>{hms(clip.start_s)}</td><td>{hms(clip.end_s)}</td><td>{clip.duration_s:.3f} s</td>" in page
    sources = re.findall(r'<video [^>]*src="([^"]+)"', page)
    assert sorted(unquote(s) for s in sources) == sorted([c.path for c in doc.clips] + [doc.reel])
    assert all((scored / unquote(s)).is_file() for s in sources)
    assert "<b>" not in page and "cut &quot;A&quot; &lt;b&gt;&amp;&#x27;x&#x27;.mp4" in page
    assert "loudness: loudness 1 (the method&#x27;s default)" in page  # recorded in highlights.json
    files = re.findall(r'<a href="([^"]+)">', page.split("result files", 1)[1].split("</dd>", 1)[0])
    assert files == ["chapters.ffmeta", "chapters.vtt", "highlights.csv", "highlights.edl", "highlights.fcpxml",
                     "highlights.json", "highlights.otio", "highlights.xml", "scores.png"]
    assert all((scored / name).is_file() for name in files)
    assert not re.search(r"<script|<link|https?://|@import", page)  # self-contained, nothing external


def test_render_rewrites_report_and_index_after_an_edit(scored, tmp_path):
    doc = read_results(scored / "highlights.json")
    data = json.loads((scored / "highlights.json").read_text())
    data["clips"] = data["clips"][:1]  # the editor keeps only the best clip
    (scored / "highlights.json").write_text(json.dumps(data))
    render_results(scored / "highlights.json")
    page, index = page_of(scored), (scored.parent / "index.html").read_text()
    assert len(THUMB_RE.findall(page)) == 1 < len(doc.clips)
    assert f"<td>1</td><td>{hms(doc.clips[0].duration_s)}</td>" in index


def test_no_clips_plays_the_source_span(scored, tmp_path):
    doc = read_results(scored / "highlights.json")
    render_outputs(doc, tmp_path / "noclips", write_clips=False, write_reel=False)
    page = page_of(tmp_path / "noclips")
    assert "No clip files were written" in page
    expected = [f"{Path(doc.video.path).as_uri()}#t={c.start_s:.3f},{c.end_s:.3f}" for c in doc.clips]
    assert re.findall(r'<video [^>]*src="([^"]+)"', page) == [
        e.replace("&", "&amp;").replace("'", "&#x27;") for e in expected]


def test_index_accumulates_runs_and_survives_a_broken_file(scored, tmp_path):
    other = make_synthetic_video(tmp_path / "second.mp4", SyntheticSpec(duration_s=4.0, event_times_s=(2.0,)))
    out_root = scored.parent
    score_videos([other], ScorerSpec(method="loudness"), out_root, store=None)
    (out_root / "broken").mkdir()
    (out_root / "broken" / "highlights.json").write_text("{not json")
    index = write_index(out_root).read_text()
    assert index.count('<img class="thumb"') == 2
    assert 'href="second/report.html"' in index and "cut &quot;A&quot; &lt;b&gt;" in index
    assert "broken" in index and "is not valid JSON" in index
    assert "2 videos, " in index


def _doc_with(scores: np.ndarray, clips: tuple[ClipEntry, ...], scored: Path):
    doc = read_results(scored / "highlights.json")
    n = len(scores)
    curve = ScoreCurve(scores, np.arange(n, dtype=float), np.arange(1, n + 1, dtype=float), "hand")
    video = dataclasses.replace(doc.video, duration_s=float(n))
    return dataclasses.replace(doc, video=video, curve=curve, clips=clips)


def test_plot_flat_curve_has_no_drop_threshold_and_outside_legend(scored):
    flat = _doc_with(np.full(10, 3.5), (ClipEntry(2.0, 5.0, 3.5, 1),), scored)
    assert is_flat(flat.curve.scores) and threshold_score(flat) == 3.5
    fig, ax = plt.subplots(figsize=plot.FIGSIZE_IN, dpi=plot.DPI, layout="constrained")
    try:
        plot._draw(ax, flat)
        fig.canvas.draw()
        low, high = ax.get_ylim()
        assert low < 3.5 < high and low > 0  # flat at its value, not a line at 0
        [steps] = [p for p in ax.patches if type(p).__name__ == "StepPatch"]
        assert steps.get_data().baseline is None
        assert any(np.allclose(line.get_ydata(), 3.5) for line in ax.lines)  # the threshold line
        assert any("flat scores" in t.get_text() for t in ax.texts)
        legend_box, axes_box = ax.get_legend().get_window_extent(), ax.get_window_extent()
        assert legend_box.y0 >= axes_box.y1 - 1  # above the data
    finally:
        plt.close(fig)
    image = Image.open(io.BytesIO(plot.plot_png(flat)))
    assert image.size == (1600, 500)


def test_plot_labels_the_best_ranks_only_and_shades_every_clip(scored):
    clips = tuple(ClipEntry(2.0 * i, 2.0 * i + 1.0, 1.0, rank) for i, rank in enumerate(np.r_[30:0:-1]))  # 30 clips
    many = _doc_with(np.arange(60.0), clips, scored)
    fig, ax = plt.subplots(figsize=plot.FIGSIZE_IN, dpi=plot.DPI, layout="constrained")
    try:
        plot._draw(ax, many)
        labels = sorted(int(t.get_text()[1:]) for t in ax.texts if t.get_text().startswith("#"))
        assert labels == list(range(1, plot.PLOT_LABELS + 1))  # the best ranks, wherever they are
        [spans] = ax.collections  # one collection shades all 30
        assert len(spans.get_paths()) == 30
        assert any("#1-#20 labelled" in t.get_text() for t in ax.get_legend().get_texts())
        fig.canvas.draw()
        title_box, legend_box = ax.title.get_window_extent(), ax.get_legend().get_window_extent()
        assert title_box.y0 >= legend_box.y1 - 1  # the title sits above the legend row
    finally:
        plt.close(fig)


def test_flat_scores_warning_in_report(scored):
    from avhighlights.pipeline.report_html import report_text

    flat = _doc_with(np.zeros(8), (ClipEntry(0.0, 4.0, 0.0, 1, "x.mp4"),), scored)
    assert "flat scores: every second scores 0" in report_text(flat, {}, [])
    assert threshold_score(_doc_with(np.arange(8.0), (ClipEntry(4.0, 7.0, 5.0, 1),), scored)) == 4.0
    assert hms(3725.0456) == "01:02:05.046"


def test_no_selected_clips_still_gives_a_page_and_a_poster(scored, tmp_path):
    doc = dataclasses.replace(read_results(scored / "highlights.json"), clips=())
    render_outputs(doc, tmp_path / "empty", formats=("html",))
    page = page_of(tmp_path / "empty")
    assert "No clips were selected." in page and not THUMB_RE.findall(page)
    assert Image.open(tmp_path / "empty" / "poster.jpg").format == "JPEG"


def test_the_page_is_written_a_row_at_a_time(scored):
    """No piece written holds more than one clip's still, and the pieces are the page (the page with a still per
    clip is never one string: its size grows with the clip count)."""
    from avhighlights.pipeline.report_html import report_pieces

    clips = tuple(ClipEntry(float(i), i + 1.5, 1.0 - i / 10, i + 1) for i in range(3))
    doc = dataclasses.replace(read_results(scored / "highlights.json"), clips=clips)
    stills = {clip.rank: b"\xff\xd8" + bytes(2000) for clip in doc.clips}
    pieces = list(report_pieces(doc, stills, []))
    assert max(len(THUMB_RE.findall(piece)) for piece in pieces) == 1
    assert sum(len(THUMB_RE.findall(piece)) for piece in pieces) == len(doc.clips) == 3
    assert "".join(pieces).startswith("<!DOCTYPE html>") and "".join(pieces).rstrip().endswith("</html>")
