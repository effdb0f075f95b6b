"""Facts about a highlights document that the plot, report.html and the batch index all show.

The selection threshold is the one the results record (`selection.threshold_score`, written when a
`--threshold` was used) or else the lowest score among the selected seconds (the seconds whose
centres lie inside a clip). A curve is "flat" by the selection's own criterion
(`select.flat_scores_warning`): such scores cannot rank the seconds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from avhighlights.pipeline.results import ClipEntry, HighlightsDoc
from avhighlights.pipeline.select import flat_scores_warning


def is_flat(scores: np.ndarray) -> bool:
    """True when the finite scores span (almost) no range, or when there are none (as `score` warns)."""
    return flat_scores_warning(scores) is not None


def selected_mask(doc: HighlightsDoc) -> np.ndarray:
    """(T,) bool: the curve's steps whose centre lies inside one of the clips."""
    centres_s = (np.asarray(doc.curve.start_s) + np.asarray(doc.curve.end_s)) / 2.0
    mask = np.zeros(len(centres_s), dtype=bool)
    for clip in doc.clips:
        mask |= (centres_s >= clip.start_s) & (centres_s < clip.end_s)
    return mask


def threshold_score(doc: HighlightsDoc) -> float | None:
    """The recorded selection threshold, else the lowest selected second's score (None without either)."""
    recorded = getattr(doc.selection, "threshold_score", None)  # set by `--threshold` (selection settings)
    if recorded is not None:
        return float(recorded)
    mask = selected_mask(doc)
    return float(np.min(np.asarray(doc.curve.scores)[mask])) if mask.any() else None


def warnings_of(doc: HighlightsDoc) -> list[str]:
    """The document's own warnings (its `warnings` list, when the results carry one), plus a flat-scores
    warning when the curve is flat and no recorded warning already says so."""
    recorded = [str(w) for w in getattr(doc, "warnings", None) or ()]
    scores = np.asarray(doc.curve.scores)
    if len(scores) and is_flat(scores) and not any("flat" in w.lower() for w in recorded):
        recorded.append(f"flat scores: every second scores {float(np.nanmean(scores)):.6g}, so the ranking "
                        "and the selected clips are arbitrary")
    return recorded


def best_second_s(doc: HighlightsDoc, clip: ClipEntry) -> float:
    """The middle of the best-scoring curve step inside `clip` (the clip's middle when no step lies inside)."""
    starts, ends = np.asarray(doc.curve.start_s), np.asarray(doc.curve.end_s)
    inside = np.flatnonzero((ends > clip.start_s) & (starts < clip.end_s))
    if inside.size == 0:
        return (clip.start_s + clip.end_s) / 2.0
    best = inside[int(np.argmax(np.asarray(doc.curve.scores)[inside]))]  # ties: the earliest step
    middle_s = (max(starts[best], clip.start_s) + min(ends[best], clip.end_s)) / 2.0
    return float(min(middle_s, doc.video.duration_s))


def hms(time_s: float) -> str:
    """`HH:MM:SS.mmm` (hours not wrapped)."""
    total_ms = int(round(max(0.0, float(time_s)) * 1000.0))
    hours, rest_ms = divmod(total_ms, 3_600_000)
    minutes, rest_ms = divmod(rest_ms, 60_000)
    seconds, ms = divmod(rest_ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}.{ms:03d}"


def total_highlight_s(doc: HighlightsDoc) -> float:
    return float(sum(c.duration_s for c in doc.clips))


def video_name(doc: HighlightsDoc) -> str:
    return Path(doc.video.path).name
