"""Stage 5: turn a score curve into ranked highlight segments.

Rule (all times in seconds):

1. Budget. Rank the curve's steps by score (higher first; ties: earlier step first). The budget is
   the total length of the top `count = max(1, round_half_up(top_ratio * T))` steps, so the default
   selects half of a video on the 1-s grid.
2. Greedy fill. Walk the steps in rank order and add a step when the clips it would produce still fit
   the budget. Clips are runs of selected steps, joined across gaps <= `merge_gap_s`; a clip shorter
   than `min_clip_s` costs `min_clip_s`, because it is EXTENDED (never dropped) in step 3. A step that
   would overflow the budget is skipped in favour of the next-ranked one (skipped steps are retried,
   in rank order, until none fits); so the selection stays within one step of the budget instead of
   growing with every short clip.
3. Short clips are extended symmetrically into their neighbours to `min_clip_s`; an extension that
   meets the start or end of the video continues on the other side; a video shorter than `min_clip_s`
   keeps the clip as is. Overlapping or touching clips are merged.
4. Each clip is padded by `pad_s` on both sides, clipped to [0, duration], and merged again.
5. A clip's score is the overlap-weighted mean of the curve's scores over its span.
6. `max_total_s`: clips are kept best first; the first clip that does not fit is trimmed (its start is
   kept) when the remaining time is at least `min_clip_s`, otherwise it is dropped; later clips that
   still fit whole are kept.
7. Rank 1 = best score (ties: earlier clip first). Segments are returned in time order.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

import numpy as np

from avhighlights.errors import AVHighlightsError, ConfigError
from avhighlights.pipeline.timebase import Spans, align
from avhighlights.pipeline.types import ScoreCurve, Segment

EPS_S = 1e-6


class ScoreCurveError(AVHighlightsError):
    """A score curve cannot be turned into segments (empty, non-finite, inconsistent spans)."""


@dataclass(frozen=True)
class SelectionConfig:
    """How much of the video becomes highlights and how the clips are shaped."""

    top_ratio: float = 0.5
    min_clip_s: float = 2.0
    pad_s: float = 0.0
    max_total_s: float | None = None
    merge_gap_s: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 < self.top_ratio <= 1.0:
            raise ConfigError(f"selection.top_ratio must be in (0, 1], got {self.top_ratio}")
        for name in ("min_clip_s", "pad_s", "merge_gap_s"):
            if not getattr(self, name) >= 0.0:
                raise ConfigError(f"selection.{name} must be >= 0, got {getattr(self, name)}")
        if self.max_total_s is not None and not self.max_total_s > 0.0:
            raise ConfigError(f"selection.max_total_s must be > 0 or None, got {self.max_total_s}")


def select_segments(curve: ScoreCurve, duration_s: float, config: SelectionConfig | None = None) -> list[Segment]:
    """Ranked highlight segments of `curve` for a video of `duration_s` (see the module docstring)."""
    config = config or SelectionConfig()
    spans, scores = _checked_steps(curve, duration_s)
    min_clip_s = min(config.min_clip_s, duration_s)
    order = rank_order(scores, spans.start_s)
    count = max(1, math.floor(config.top_ratio * len(scores) + 0.5))
    budget_s = float(np.sum(spans.end_s[order[:count]] - spans.start_s[order[:count]]))
    chosen = _greedy_fill(spans, order, budget_s, min_clip_s, config.merge_gap_s)
    clips = _runs(spans, chosen, config.merge_gap_s)
    clips = _merge([_extend(a, b, min_clip_s, duration_s) for a, b in clips])
    clips = _merge([(max(0.0, a - config.pad_s), min(duration_s, b + config.pad_s)) for a, b in clips])
    scored = [(a, b, _span_score(scores, spans, a, b)) for a, b in clips]
    if config.max_total_s is not None:
        trimmed = _limit_total(scored, config.max_total_s, min_clip_s)
        scored = [(a, b, _span_score(scores, spans, a, b)) for a, b, _ in trimmed]
    return _ranked(scored)


def rank_order(scores: np.ndarray, start_s: np.ndarray) -> np.ndarray:
    """Indices best first: higher score first, ties broken by earlier start."""
    return np.lexsort((np.asarray(start_s), -np.asarray(scores, dtype=np.float64)))


def _checked_steps(curve: ScoreCurve, duration_s: float) -> tuple[Spans, np.ndarray]:
    scores = np.asarray(curve.scores, dtype=np.float64)  # (T,)
    if not duration_s > 0:
        raise ScoreCurveError(f"video duration must be positive, got {duration_s}")
    if scores.ndim != 1 or scores.size == 0 or scores.shape != np.shape(curve.start_s):
        raise ScoreCurveError(f"score curve of {curve.method!r} must be 1-D, non-empty and match its spans")
    if not np.all(np.isfinite(scores)):
        raise ScoreCurveError(f"score curve of {curve.method!r} has {int(np.sum(~np.isfinite(scores)))} "
                              "non-finite scores")
    start = np.clip(np.asarray(curve.start_s, dtype=np.float64), 0.0, duration_s)
    end = np.clip(np.asarray(curve.end_s, dtype=np.float64), 0.0, duration_s)
    by_time = np.argsort(start, kind="stable")
    return Spans(start[by_time], np.maximum(end, start)[by_time]), scores[by_time]


class _RunBook:
    """Selected steps grouped into runs (joined across gaps <= merge_gap_s), with their cost."""

    def __init__(self, spans: Spans, min_clip_s: float, merge_gap_s: float):
        self.spans, self.min_clip_s, self.merge_gap_s = spans, min_clip_s, merge_gap_s
        self.selected: list[int] = []  # sorted step indices
        self.run_end: dict[int, int] = {}  # first step of a run -> last step
        self.run_start: dict[int, int] = {}  # last step of a run -> first step

    def cost_s(self, first: int, last: int) -> float:
        return max(self.spans.end_s[last] - self.spans.start_s[first], self.min_clip_s)

    def joins(self, left: int, right: int) -> bool:
        return self.spans.start_s[right] - self.spans.end_s[left] <= self.merge_gap_s + EPS_S

    def neighbours(self, step: int) -> tuple[tuple[int, int] | None, tuple[int, int] | None]:
        pos = bisect.bisect_left(self.selected, step)
        left = right = None
        if pos > 0 and self.joins(self.selected[pos - 1], step):
            last = self.selected[pos - 1]
            left = (self.run_start[last], last)
        if pos < len(self.selected) and self.joins(step, self.selected[pos]):
            first = self.selected[pos]
            right = (first, self.run_end[first])
        return left, right

    def delta_s(self, step: int) -> float:
        """How much the total selected length grows when `step` is added."""
        left, right = self.neighbours(step)
        new_first, new_last = (left or (step, step))[0], (right or (step, step))[1]
        old = sum(self.cost_s(*run) for run in (left, right) if run)
        return self.cost_s(new_first, new_last) - old

    def add(self, step: int) -> None:
        left, right = self.neighbours(step)
        first, last = (left or (step, step))[0], (right or (step, step))[1]
        for run in (left, right):
            if run:
                self.run_end.pop(run[0], None)
                self.run_start.pop(run[1], None)
        self.run_end[first], self.run_start[last] = last, first
        bisect.insort(self.selected, step)


def _greedy_fill(spans: Spans, order: np.ndarray, budget_s: float, min_clip_s: float,
                 merge_gap_s: float) -> list[int]:
    """Add steps best first while they fit; passes over the skipped steps repeat until none fits,
    because a step that was too expensive alone may later join two clips cheaply."""
    book, total_s, pending = _RunBook(spans, min_clip_s, merge_gap_s), 0.0, order.tolist()
    while pending and total_s < budget_s - EPS_S:
        skipped = []
        for step in pending:
            delta_s = book.delta_s(step)
            if total_s + delta_s <= budget_s + EPS_S or not book.selected:
                book.add(step)
                total_s += delta_s
            else:
                skipped.append(step)
            if total_s >= budget_s - EPS_S:
                break
        if len(skipped) == len(pending):
            break
        pending = skipped
    return book.selected


def _runs(spans: Spans, steps: list[int], merge_gap_s: float) -> list[tuple[float, float]]:
    runs: list[tuple[float, float]] = []
    for step in steps:
        start, end = float(spans.start_s[step]), float(spans.end_s[step])
        if runs and start - runs[-1][1] <= merge_gap_s + EPS_S:
            runs[-1] = (runs[-1][0], max(runs[-1][1], end))
        else:
            runs.append((start, end))
    return runs


def _extend(start_s: float, end_s: float, min_clip_s: float, duration_s: float) -> tuple[float, float]:
    """Grow [start_s, end_s) symmetrically to `min_clip_s`, shifting the excess off the video's edges."""
    missing_s = min_clip_s - (end_s - start_s)
    if missing_s <= EPS_S:
        return start_s, end_s
    start_s, end_s = start_s - missing_s / 2, end_s + missing_s / 2
    if start_s < 0.0:
        start_s, end_s = 0.0, end_s - start_s
    if end_s > duration_s:
        start_s, end_s = start_s - (end_s - duration_s), duration_s
    return max(0.0, start_s), end_s


def _merge(clips: list[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[tuple[float, float]] = []
    for start_s, end_s in sorted(clips):
        if merged and start_s <= merged[-1][1] + EPS_S:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end_s))
        else:
            merged.append((start_s, end_s))
    return merged


def _span_score(scores: np.ndarray, spans: Spans, start_s: float, end_s: float) -> float:
    return float(align(scores, spans, Spans(np.array([start_s]), np.array([end_s])))[0])


def _limit_total(scored: list[tuple[float, float, float]], max_total_s: float,
                 min_clip_s: float) -> list[tuple[float, float, float]]:
    kept, left_s = [], max_total_s
    for start_s, end_s, score in sorted(scored, key=lambda c: (-c[2], c[0])):
        if end_s - start_s <= left_s + EPS_S:
            kept.append((start_s, end_s, score))
            left_s -= end_s - start_s
        elif left_s >= max(min_clip_s, EPS_S):
            kept.append((start_s, start_s + left_s, score))
            left_s = 0.0
    return sorted(kept)


def _ranked(scored: list[tuple[float, float, float]]) -> list[Segment]:
    by_rank = sorted(range(len(scored)), key=lambda i: (-scored[i][2], scored[i][0]))
    rank_of = {index: rank for rank, index in enumerate(by_rank, start=1)}
    return [Segment(float(a), float(b), float(s), rank_of[i]) for i, (a, b, s) in enumerate(sorted(scored))]
