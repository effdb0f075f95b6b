"""`scores.png`: the score curve over time with the selected clips shaded and the selection threshold
(matplotlib, Agg backend), 1600x500 px.

The curve is a step plot over the 1-s steps with no drop to a baseline at its ends; the y-range comes
from the data (a flat curve is drawn flat at its value and says "flat scores"). The legend sits above
the axes, outside the data. The figure is a plain `matplotlib.figure.Figure`, not a pyplot one: pyplot
keeps global state (the list of open figures) that is not thread-safe, and `reprocess` draws the plots of
many videos in parallel threads. matplotlib is imported on the first plot, not with this module, so runs that
write no scores.png (and every module that imports this one) do not pay for it.
"""

from __future__ import annotations

import functools
import io
import threading
from pathlib import Path

import numpy as np

from avhighlights.core.atomic import write_bytes
from avhighlights.pipeline.report_facts import is_flat, threshold_score, video_name
from avhighlights.pipeline.results import HighlightsDoc

FIGSIZE_IN = (16.0, 5.0)
DPI = 100
MAX_RANK_LABELS = 20  # "#rank" over the best 20 clips only (hundreds of labels overprint each other)
CURVE_COLOR, CLIP_COLOR, THRESHOLD_COLOR = "#1f5fa8", "#f5a623", "#c0392b"
# the last plot drawn, by document identity: a render writes scores.png and then embeds the same plot in
# report.html, so the second asks for the bytes the first drew (matplotlib's draw + PNG encode is ~0.3-1 s)
_LAST_PLOT: list[tuple[HighlightsDoc, bytes]] = []
_LAST_PLOT_LOCK = threading.Lock()


@functools.cache
def _matplotlib():
    """matplotlib's `Figure` and `Patch`, imported on first use with the Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    return Figure, Patch


def plot_png(doc: HighlightsDoc) -> bytes:
    """The plot as PNG bytes (drawn once per document object: asked again for the same one, the same bytes)."""
    with _LAST_PLOT_LOCK:
        if _LAST_PLOT and _LAST_PLOT[0][0] is doc:
            return _LAST_PLOT[0][1]
    Figure, _ = _matplotlib()
    fig = Figure(figsize=FIGSIZE_IN, dpi=DPI, layout="constrained")
    _draw(fig.subplots(), doc)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    with _LAST_PLOT_LOCK:
        _LAST_PLOT[:] = [(doc, buffer.getvalue())]
    return buffer.getvalue()


def plot_scores(doc: HighlightsDoc, target: str | Path) -> Path:
    """Write the plot of `doc` atomically as PNG to `target`."""
    return write_bytes(target, plot_png(doc))


def _draw(ax, doc: HighlightsDoc) -> None:
    scores = np.asarray(doc.curve.scores, dtype=np.float64)
    handles = []
    if len(scores):
        edges_s = np.append(doc.curve.start_s, doc.curve.end_s[-1])  # (T + 1,)
        handles.append(ax.stairs(scores, edges_s, baseline=None, color=CURVE_COLOR, lw=1.8, zorder=3,
                                 label=f"score per second ({doc.method})"))
    # one collection for every clip's band (an axvspan each was a Polygon each: 706 of them for a 60-min source)
    ax.broken_barh([(clip.start_s, clip.end_s - clip.start_s) for clip in doc.clips], (0.0, 1.0),
                   transform=ax.get_xaxis_transform(), color=CLIP_COLOR, alpha=0.28, lw=0)
    for clip in sorted(doc.clips, key=lambda c: c.rank)[:MAX_RANK_LABELS]:
        ax.annotate(f"#{clip.rank}", ((clip.start_s + clip.end_s) / 2, 0.97), xycoords=("data", "axes fraction"),
                    ha="center", va="top", fontsize=11, fontweight="bold", color="#7a4a00")
    if doc.clips:
        _, Patch = _matplotlib()
        handles.append(Patch(color=CLIP_COLOR, alpha=0.5, label=f"selected clips ({len(doc.clips)})"))
    threshold = threshold_score(doc) if len(scores) else None
    if threshold is not None:
        handles.append(ax.axhline(threshold, color=THRESHOLD_COLOR, ls="--", lw=1.3,
                                  label=f"selection threshold {threshold:.4g}"))
    _set_ranges(ax, doc, scores)
    ax.set_xlabel("time (s)", fontsize=12)
    ax.set_ylabel("highlight score", fontsize=12)
    ax.tick_params(labelsize=11)
    ax.grid(axis="y", alpha=0.3)
    ax.set_title(f"{video_name(doc)}: {len(doc.clips)} clip{'' if len(doc.clips) == 1 else 's'}", fontsize=13,
                 loc="left")
    if handles:
        ax.legend(handles=handles, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=len(handles),
                  fontsize=11, frameon=False, borderaxespad=0.2)


def _set_ranges(ax, doc: HighlightsDoc, scores: np.ndarray) -> None:
    ax.set_xlim(0.0, doc.video.duration_s)
    finite = scores[np.isfinite(scores)]
    if finite.size == 0:
        return
    low, high = float(finite.min()), float(finite.max())
    if is_flat(finite):
        half = max(abs(low) * 0.1, 0.5)
        ax.set_ylim(low - half, high + half)
        ax.text(0.5, 0.62, f"flat scores ({low:.4g} everywhere): the ranking is arbitrary", transform=ax.transAxes,
                ha="center", va="bottom", fontsize=14, color="#555555")
        return
    margin = 0.08 * (high - low)
    ax.set_ylim(low - margin, high + 2.5 * margin)  # headroom for the rank labels
