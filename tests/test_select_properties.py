"""Hypothesis properties of the selection over random score curves and option combinations.

The invariant (also in pipeline/select.py's docstring), for every curve and every combination:
- clips lie inside [0, duration], are sorted, disjoint and not touching;
- every clip is at least min(min_clip_s, duration) long;
- the total is <= target_s and <= max_total_s (when given);
- every step the ranking picked scores >= the threshold actually used (given, quantile or the ranking's cut);
- every second of a clip lies within max(min_clip_s, merge_gap_s / 2) + pad_s of a picked step: what is not
  a picked step is a merge gap, a min-clip extension or a margin;
- without a cap (target_s / max_total_s), every picked step is inside a clip with pad_s of margin on both sides
  (less only at the video's edges), and two picked steps at most merge_gap_s apart are in the same clip;
- flat curves produce the warning, curves with a clear spread do not.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from avhighlights.core.timebase import second_grid
from avhighlights.core.types import ScoreCurve
from avhighlights.pipeline.select import SelectionConfig, flat_scores_warning, select

TOL_S = 1e-6


@st.composite
def curves(draw) -> tuple[ScoreCurve, float]:
    n_steps = draw(st.integers(1, 40))
    duration_s = n_steps - draw(st.sampled_from([0.0, 0.25, 0.5, 0.9]))
    grid = second_grid(duration_s)
    n = len(grid.start_s)
    if draw(st.booleans()):
        scores = np.array(draw(st.lists(st.integers(-3, 3), min_size=n, max_size=n)), dtype=float)  # many ties
    else:
        scores = np.array(draw(st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=n, max_size=n)))
    return ScoreCurve(scores, grid.start_s, grid.end_s, "random"), duration_s


@st.composite
def configs(draw, scores: np.ndarray) -> SelectionConfig:
    rule = draw(st.sampled_from(["top_ratio", "target_s", "threshold", "quantile", "threshold+target_s"]))
    seconds = st.floats(0.0, 4.0).map(lambda x: round(x, 2))
    kwargs = dict(min_clip_s=draw(seconds), pad_s=draw(st.sampled_from([0.0, 0.0, 0.5, 1.25])),
                  merge_gap_s=draw(st.sampled_from([0.0, 0.0, 1.0, 2.5])),
                  max_total_s=draw(st.none() | st.floats(0.5, 30.0)))
    if rule == "top_ratio":
        kwargs["top_ratio"] = draw(st.floats(0.01, 1.0))
    if "target_s" in rule:
        kwargs["target_s"] = draw(st.floats(0.5, 45.0))
    if "threshold" in rule:
        kwargs["threshold"] = draw(st.sampled_from(sorted(set(scores.tolist())))) - draw(st.sampled_from([0.0, 0.5]))
    if rule == "quantile":
        kwargs["threshold_quantile"] = draw(st.floats(0.0, 1.0))
    return SelectionConfig(**kwargs)


def _distance_to_steps(t: float, starts: np.ndarray, ends: np.ndarray) -> float:
    return float(np.min(np.maximum(0.0, np.maximum(starts - t, t - ends))))


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_selection_invariants(data):
    curve, duration_s = data.draw(curves())
    config = data.draw(configs(curve.scores))
    result = select(curve, duration_s, config)
    segments, picked = result.segments, result.picked_steps
    starts, ends = curve.start_s[picked], np.minimum(curve.end_s[picked], duration_s)

    assert all(0.0 <= s.start_s < s.end_s <= duration_s + TOL_S for s in segments)
    assert all(a.end_s < b.start_s for a, b in zip(segments, segments[1:], strict=False))
    assert sorted(s.rank for s in segments) == list(range(1, len(segments) + 1))
    assert all(s.duration_s >= min(config.min_clip_s, duration_s) - TOL_S for s in segments)
    total_s = sum(s.duration_s for s in segments)
    for cap_s in (config.target_s, config.max_total_s):
        assert cap_s is None or total_s <= cap_s + TOL_S
    if picked:
        assert np.all(curve.scores[picked] >= result.threshold_score)
    else:
        assert segments == []

    reach_s = max(config.min_clip_s, config.merge_gap_s / 2) + config.pad_s + TOL_S
    for seg in segments:
        for t in np.linspace(seg.start_s, seg.end_s, 9):
            assert _distance_to_steps(t, starts, ends) <= reach_s, (seg, t)

    if config.target_s is None and config.max_total_s is None:
        for a, b in zip(starts, ends, strict=True):
            holder = [s for s in segments if s.start_s <= a + TOL_S and b <= s.end_s + TOL_S]
            assert len(holder) == 1
            assert holder[0].start_s <= max(0.0, a - config.pad_s) + TOL_S
            assert holder[0].end_s >= min(duration_s, b + config.pad_s) - TOL_S
        for left_end, right_start in zip(ends[:-1], starts[1:], strict=True):
            if right_start - left_end <= config.merge_gap_s:
                assert any(s.start_s <= left_end + TOL_S and right_start <= s.end_s + TOL_S for s in segments)


@settings(max_examples=100, deadline=None)
@given(level=st.floats(-1e6, 1e6, allow_nan=False), n=st.integers(1, 50), data=st.data())
def test_flat_inputs_warn_and_spread_inputs_do_not(level, n, data):
    jitter = data.draw(st.floats(0.0, 0.9e-6)) * max(abs(level), 1e-6)
    flat = np.full(n, level) + np.linspace(0.0, jitter, n)
    assert flat_scores_warning(flat) is not None
    if n > 1:
        spread = flat.copy()
        spread[-1] = level + max(abs(level), 1.0) * 1e-3
        assert flat_scores_warning(spread) is None
