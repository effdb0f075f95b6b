"""`scores.png`: the score curve over time with the selected clips shaded (matplotlib, Agg backend).

The figure is a plain `matplotlib.figure.Figure`, not a pyplot one: pyplot keeps global state (the list of
open figures) that is not thread-safe, and `reprocess` draws the plots of many videos in parallel threads.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from avhighlights.atomic import atomic_path  # noqa: E402
from avhighlights.pipeline.results import HighlightsDoc  # noqa: E402


def plot_scores(doc: HighlightsDoc, target: str | Path) -> Path:
    """Draw the step curve and shade each clip (labelled with its rank); written atomically as PNG."""
    fig = Figure(figsize=(10, 3), dpi=100)
    _draw(fig.subplots(), doc)
    with atomic_path(target) as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight")
    return Path(target)


def _draw(ax, doc: HighlightsDoc) -> None:
    curve = doc.curve
    if len(curve.scores):
        edges_s = np.append(curve.start_s, curve.end_s[-1])  # (T + 1,)
        ax.stairs(curve.scores, edges_s, color="tab:blue", label=f"score ({doc.method})")
    for clip in doc.clips:
        ax.axvspan(clip.start_s, clip.end_s, color="tab:orange", alpha=0.3, lw=0)
        ax.annotate(str(clip.rank), ((clip.start_s + clip.end_s) / 2, 1.0), xycoords=("data", "axes fraction"),
                    ha="center", va="bottom", fontsize=8)
    ax.set_xlim(0.0, doc.video.duration_s)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("highlight score")
    ax.set_title(f"{Path(doc.video.path).name}: {len(doc.clips)} clips", fontsize=9, pad=12)
    if len(curve.scores):
        ax.legend(loc="lower right", fontsize=8)
