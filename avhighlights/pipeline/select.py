"""Stage 5: turn a score curve into ranked highlight segments.

Rule (all times in seconds):

1. Budget. Rank the curve's steps by score (higher first; ties: earlier step first). How much is
   selected is decided by exactly one rule:
   - `top_ratio` (the papers' default, 0.5): the budget is the total length of the top
     `count = max(1, round_half_up(top_ratio * T))` steps, so the default selects half of a video.
   - `target_s`: the budget is `target_s` seconds, INCLUDING min-clip extensions and `pad_s` margins, so
     the final total never exceeds it (and is as close to it as whole steps and clips allow).
   - `threshold` (absolute score) or `threshold_quantile` (q in [0, 1]: the threshold is the q-quantile,
     linear interpolation, of this video's scores): only steps scoring >= the threshold can be picked;
     without `target_s` every such step is picked, with `target_s` the best of them up to the target.
   `target_s`, `threshold` and `threshold_quantile` replace `top_ratio` (it is then ignored);
   `max_total_s` caps the result of any rule (step 6).
2. Greedy fill. Walk the steps in rank order and add a step when the clips it would produce still fit
   the budget. Clips are runs of selected steps, joined across gaps <= `merge_gap_s`; a clip shorter
   than `min_clip_s` costs `min_clip_s`, because it is EXTENDED (never dropped) in step 3. A step that
   would overflow the budget is skipped in favour of the next-ranked one (skipped steps are retried,
   in rank order, until none fits); so the selection stays within one step of the budget instead of
   growing with every short clip. Under `top_ratio` the best step is always taken; under `target_s` a
   step whose clip alone exceeds the target is never taken (the selection may then be empty).
3. Short clips are extended symmetrically into their neighbours to `min_clip_s`; an extension that
   meets the start or end of the video continues on the other side; a video shorter than `min_clip_s`
   keeps the clip as is. Overlapping or touching clips are merged.
4. Each clip is padded by `pad_s` on both sides, clipped to [0, duration], and merged again.
5. A clip's score is the overlap-weighted mean of the curve's scores over its span.
6. `max_total_s`: clips are kept best first; the first clip that does not fit is trimmed (its start is
   kept) when the remaining time is at least `min_clip_s`, otherwise it is dropped; later clips that
   still fit whole are kept.
7. Rank 1 = best score (ties: earlier clip first). Segments are returned in time order.

Invariant (checked by tests/test_select_properties.py): clips are sorted, disjoint and inside
[0, duration], each at least min(min_clip_s, duration) long; the total is <= `target_s` and <= `max_total_s`;
every step the ranking picks scores >= the threshold used (`Selection.threshold_score`); every second of a
clip lies within `max(min_clip_s, merge_gap_s / 2) + pad_s` of a picked step (what is not a picked step is
a merge gap, a min-clip extension or a margin); without a cap, every picked step sits in a clip with
`pad_s` of margin (less only at the video's edges) and picked steps <= `merge_gap_s` apart share a clip.

Flat scores (`flat_scores_warning`): a curve whose range max - min is <= FLAT_RTOL (1e-6) times its
magnitude max(|max|, |min|), or <= FLAT_ATOL (1e-12) near zero, cannot be ranked: 1e-6 is about eight
float32 units in the last place (models compute in float32), so such differences are rounding noise. A
silent video under `loudness` scores all zeros. The selection still runs (ties go to the earliest
seconds), and the warning is shown by `score` and stored in highlights.json's `warnings`. Near-constant
scores (`near_constant_warning`, `avhighlights.core.near_constant.is_near_constant`: range <= 1e-3 of
max(|scores|, 1)), the output of a collapsed model, get their own warning the same way.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, fields

import numpy as np

from avhighlights.core.errors import AVHighlightsError, ConfigError
from avhighlights.core.near_constant import NEAR_CONSTANT_RTOL, is_near_constant, score_scale
from avhighlights.core.timebase import Spans, align
from avhighlights.core.types import ScoreCurve, Segment

EPS_S = 1e-6
FLAT_RTOL = 1e-6  # a score range this small relative to the scores' magnitude is float32 rounding noise
FLAT_ATOL = 1e-12  # the same for scores that are all (almost) zero
DERIVED_KEYS = ("mode", "threshold_score")  # written beside the settings in highlights.json, not settings


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
    target_s: float | None = None  # best clips up to this total length (replaces top_ratio)
    threshold: float | None = None  # absolute score threshold (replaces top_ratio)
    threshold_quantile: float | None = None  # threshold = this quantile of the video's scores (replaces top_ratio)

    def __post_init__(self) -> None:
        if not 0.0 < self.top_ratio <= 1.0:
            raise ConfigError(f"selection.top_ratio must be in (0, 1], got {self.top_ratio}")
        for name in ("min_clip_s", "pad_s", "merge_gap_s"):
            if not getattr(self, name) >= 0.0:
                raise ConfigError(f"selection.{name} must be >= 0, got {getattr(self, name)}")
        for name in ("max_total_s", "target_s"):
            if getattr(self, name) is not None and not getattr(self, name) > 0.0:
                raise ConfigError(f"selection.{name} must be > 0 or None, got {getattr(self, name)}")
        if self.threshold is not None and not math.isfinite(self.threshold):
            raise ConfigError(f"selection.threshold must be a finite score, got {self.threshold}")
        if self.threshold_quantile is not None and not 0.0 <= self.threshold_quantile <= 1.0:
            raise ConfigError(f"selection.threshold_quantile must be in [0, 1], got {self.threshold_quantile}")
        if self.threshold is not None and self.threshold_quantile is not None:
            raise ConfigError("selection: give either threshold (a score) or threshold_quantile, not both")

    @property
    def mode(self) -> str:
        """Which rule decides how much is selected: "top_ratio", "target_s", "threshold" or "threshold+target_s"."""
        by_threshold = self.threshold is not None or self.threshold_quantile is not None
        if by_threshold:
            return "threshold+target_s" if self.target_s is not None else "threshold"
        return "target_s" if self.target_s is not None else "top_ratio"

    def changes(self) -> dict:
        """The fields that differ from the defaults (e.g. to pass them on without changing default requests)."""
        default = SelectionConfig()
        return {f.name: getattr(self, f.name) for f in fields(self)
                if getattr(self, f.name) != getattr(default, f.name)}

    @classmethod
    def from_json(cls, data: dict) -> SelectionConfig:
        """The settings of a highlights.json `selection` object (derived keys such as `threshold_score` dropped)."""
        return cls(**{k: v for k, v in data.items() if k not in DERIVED_KEYS})


@dataclass(frozen=True)
class Selection:
    """The outcome of `select`: the segments, the steps the ranking picked and the threshold it reached."""

    segments: list[Segment]
    picked_steps: list[int]  # indices into the curve (sorted by time) that the ranking picked
    threshold_score: float | None  # the given/quantile threshold; else the lowest picked score (None: none picked)
    mode: str

    def summary(self) -> dict:
        return {"mode": self.mode, "threshold_score": self.threshold_score}


def select_segments(curve: ScoreCurve, duration_s: float, config: SelectionConfig | None = None) -> list[Segment]:
    """Ranked highlight segments of `curve` for a video of `duration_s` (see the module docstring)."""
    return select(curve, duration_s, config).segments


def select(curve: ScoreCurve, duration_s: float, config: SelectionConfig | None = None) -> Selection:
    """`select_segments` plus what the ranking picked and the threshold it used."""
    config = config or SelectionConfig()
    spans, scores = _checked_steps(curve, duration_s)
    min_clip_s = min(config.min_clip_s, duration_s)
    order = rank_order(scores, spans.start_s)
    threshold = resolved_threshold(scores, config)
    if threshold is not None:
        order = order[scores[order] >= threshold]
    budget_s = _budget_s(spans, order, config)
    pad_cost_s = 2 * config.pad_s if config.target_s is not None else 0.0
    book = _RunBook(spans, min_clip_s, config.merge_gap_s, pad_cost_s)
    chosen = _greedy_fill(book, order, budget_s, force_first=config.target_s is None)
    clips = _runs(spans, chosen, config.merge_gap_s)
    clips = _merge([_extend(a, b, min_clip_s, duration_s) for a, b in clips])
    clips = _merge([(max(0.0, a - config.pad_s), min(duration_s, b + config.pad_s)) for a, b in clips])
    scored = [(a, b, _span_score(scores, spans, a, b)) for a, b in clips]
    cap_s = min((c for c in (config.max_total_s, config.target_s) if c is not None), default=None)
    if cap_s is not None:
        trimmed = _limit_total(scored, cap_s, min_clip_s)
        scored = [(a, b, _span_score(scores, spans, a, b)) for a, b, _ in trimmed]
    if threshold is None and chosen:
        threshold = float(np.min(scores[chosen]))
    return Selection(_ranked(scored), chosen, threshold, config.mode)


def resolved_threshold(scores: np.ndarray, config: SelectionConfig) -> float | None:
    """The score threshold of `config` for these scores: the absolute one, the quantile's value, or None."""
    if config.threshold is not None:
        return float(config.threshold)
    if config.threshold_quantile is not None:
        return float(np.quantile(np.asarray(scores, dtype=np.float64), config.threshold_quantile))
    return None


def selection_report(curve: ScoreCurve, duration_s: float, config: SelectionConfig) -> tuple[dict, list[str]]:
    """({"mode", "threshold_score"}, warnings) of the automatic selection of `curve`: the score warnings, plus one
    when nothing is selected. The threshold is None when nothing is picked or the curve cannot be selected from
    (e.g. a hand-made document without scores)."""
    warnings = score_warnings(curve)
    try:
        result = select(curve, duration_s, config)
    except ScoreCurveError:
        return {"mode": config.mode, "threshold_score": None}, warnings
    if not result.segments:
        warnings.append(_nothing_selected(curve.scores, config, result.threshold_score))
    return result.summary(), warnings


def _nothing_selected(scores: np.ndarray, config: SelectionConfig, threshold: float | None) -> str:
    if threshold is not None and not np.any(np.asarray(scores) >= threshold):
        return (f"nothing selected: no second scores >= the threshold {threshold:.6g} (scores range "
                f"{float(np.min(scores)):.6g} .. {float(np.max(scores)):.6g})")
    if config.target_s is not None:
        return (f"nothing selected: no clip fits target_s={config.target_s:g} (a clip takes at least "
                f"min_clip_s + 2 * pad_s = {config.min_clip_s + 2 * config.pad_s:g} s)")
    return "nothing selected"


def flat_scores_warning(scores: np.ndarray, method: str = "") -> str | None:
    """A one-line warning when `scores` are too flat to rank (criterion in the module docstring), else None."""
    values = np.asarray(scores, dtype=np.float64).ravel()
    finite = values[np.isfinite(values)]
    who = f"scores of method {method!r}" if method else "scores"
    if finite.size == 0:
        return f"{who}: no finite scores, nothing can be ranked"
    spread = float(np.ptp(finite))
    scale = float(max(abs(finite.max()), abs(finite.min())))
    if spread > max(FLAT_RTOL * scale, FLAT_ATOL):
        return None
    return (f"{who} are flat (range {spread:.3g} around {float(np.mean(finite)):.6g} over {finite.size} steps): "
            "the ranking is arbitrary and the clips are simply the earliest seconds; try another method")


def near_constant_warning(scores: np.ndarray, method: str = "") -> str | None:
    """A one-line warning when `scores` are near-constant (`near_constant.is_near_constant`: range <= 1e-3 of
    their scale), the output of a collapsed model, else None."""
    if not is_near_constant(scores):
        return None
    values = np.asarray(scores, dtype=np.float64)
    values = values[np.isfinite(values)]
    who = f"scores of method {method!r}" if method else "scores"
    return (f"{who} are near-constant (range {float(np.ptp(values)):.3g} on a scale of {score_scale(values):.3g}, "
            f"at most {NEAR_CONSTANT_RTOL:g} of it): a collapsed model; the ranking is mostly noise, retrain "
            "(e.g. a lower learning rate) or try another method")


def score_warnings(curve: ScoreCurve) -> list[str]:
    """Warnings about a score curve (one string each): `flat_scores_warning`, else `near_constant_warning`."""
    warning = flat_scores_warning(curve.scores, curve.method) or near_constant_warning(curve.scores, curve.method)
    return [warning] if warning else []


def rank_order(scores: np.ndarray, start_s: np.ndarray) -> np.ndarray:
    """Indices best first: higher score first, ties broken by earlier start."""
    return np.lexsort((np.asarray(start_s), -np.asarray(scores, dtype=np.float64)))


def _budget_s(spans: Spans, order: np.ndarray, config: SelectionConfig) -> float:
    """Seconds the greedy fill may spend (module docstring, step 1); `order` holds the eligible steps."""
    if config.target_s is not None:
        return float(config.target_s)
    if config.threshold is not None or config.threshold_quantile is not None:
        return math.inf
    count = max(1, math.floor(config.top_ratio * len(spans.start_s) + 0.5))
    return float(np.sum(spans.end_s[order[:count]] - spans.start_s[order[:count]]))


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
    """Selected steps grouped into runs (joined across gaps <= merge_gap_s), with their cost: the run's length,
    at least `min_clip_s`, plus `pad_cost_s` (both margins, when they count against a target)."""

    def __init__(self, spans: Spans, min_clip_s: float, merge_gap_s: float, pad_cost_s: float = 0.0):
        self.spans, self.min_clip_s, self.merge_gap_s, self.pad_cost_s = spans, min_clip_s, merge_gap_s, pad_cost_s
        self.selected: list[int] = []  # sorted step indices
        self.run_end: dict[int, int] = {}  # first step of a run -> last step
        self.run_start: dict[int, int] = {}  # last step of a run -> first step

    def cost_s(self, first: int, last: int) -> float:
        return max(self.spans.end_s[last] - self.spans.start_s[first], self.min_clip_s) + self.pad_cost_s

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

    def inside_run(self, step: int) -> bool:
        """True when `step` lies between two selected steps of one run (joined across a merge gap)."""
        pos = bisect.bisect_left(self.selected, step)
        return pos > 0 and self.selected[pos - 1] not in self.run_start

    def delta_s(self, step: int) -> float:
        """How much the total selected length grows when `step` is added."""
        if self.inside_run(step):
            return 0.0
        left, right = self.neighbours(step)
        new_first, new_last = (left or (step, step))[0], (right or (step, step))[1]
        old = sum(self.cost_s(*run) for run in (left, right) if run)
        return self.cost_s(new_first, new_last) - old

    def add(self, step: int) -> None:
        if self.inside_run(step):
            bisect.insort(self.selected, step)
            return
        left, right = self.neighbours(step)
        first, last = (left or (step, step))[0], (right or (step, step))[1]
        for run in (left, right):
            if run:
                self.run_end.pop(run[0], None)
                self.run_start.pop(run[1], None)
        self.run_end[first], self.run_start[last] = last, first
        bisect.insort(self.selected, step)


def _greedy_fill(book: _RunBook, order: np.ndarray, budget_s: float, force_first: bool) -> list[int]:
    """Add steps best first while they fit; passes over the skipped steps repeat until none fits,
    because a step that was too expensive alone may later join two clips cheaply. `force_first` takes the
    best step even when it alone exceeds the budget."""
    total_s, pending = 0.0, order.tolist()
    while pending and total_s < budget_s - EPS_S:
        skipped = []
        for step in pending:
            delta_s = book.delta_s(step)
            if total_s + delta_s <= budget_s + EPS_S or (force_first and not book.selected):
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
