"""Selection of highlight segments from hand-made score curves (expected values worked out by hand)."""

from __future__ import annotations

import numpy as np
import pytest

from avhighlights.core.errors import ConfigError
from avhighlights.core.timebase import second_grid
from avhighlights.core.types import ScoreCurve
from avhighlights.pipeline.select import ScoreCurveError, SelectionConfig, rank_order, select_segments


def grid_curve(scores, duration_s: float | None = None) -> ScoreCurve:
    grid = second_grid(duration_s or len(scores))
    return ScoreCurve(np.asarray(scores, dtype=float), grid.start_s, grid.end_s, "hand")


def spans(segments) -> list[tuple[float, float, int]]:
    return [(s.start_s, s.end_s, s.rank) for s in segments]


def test_rank_order_breaks_ties_by_earlier_start():
    order = rank_order(np.array([1.0, 3.0, 3.0, 2.0, 3.0]), np.arange(5.0))
    assert order.tolist() == [1, 2, 4, 3, 0]


def test_no_min_clip_takes_exact_top_half():
    curve = grid_curve([0, 5, 0, 0, 9, 9, 0, 0, 1, 1])
    segments = select_segments(curve, 10.0, SelectionConfig(min_clip_s=0.0))
    # top 5 steps: 4, 5 (9), 1 (5), 8, 9 (1) -> clips [1,2) [4,6) [8,10)
    assert spans(segments) == [(1.0, 2.0, 2), (4.0, 6.0, 1), (8.0, 10.0, 3)]
    assert [s.score for s in segments] == [5.0, 9.0, 1.0]


def test_default_pays_min_clip_extension_from_the_budget():
    curve = grid_curve([0, 5, 0, 0, 9, 9, 0, 0, 1, 1])
    segments = select_segments(curve, 10.0)
    # steps 4,5 (2 s), step 1 alone costs 2 s (total 4); steps 8, 9 would each cost 2 s -> skipped;
    # step 0 joins step 1 for free, step 2 grows that run to 3 s -> total 5 s = half the video.
    assert spans(segments) == [(0.0, 3.0, 2), (4.0, 6.0, 1)]
    assert segments[0].score == pytest.approx(5.0 / 3.0)
    assert sum(s.duration_s for s in segments) == 5.0


def test_default_selects_half_the_video_within_one_step():
    rng = np.random.default_rng(0)
    for duration_s in (7.0, 20.0, 61.5, 300.0):
        curve = grid_curve(rng.normal(size=len(second_grid(duration_s))), duration_s)
        total_s = sum(s.duration_s for s in select_segments(curve, duration_s))
        assert abs(total_s - duration_s / 2) <= 1.0, duration_s
        assert all(s.duration_s >= 2.0 - 1e-9 for s in select_segments(curve, duration_s))


def test_all_equal_scores_take_the_earliest_steps():
    segments = select_segments(grid_curve([1.0] * 10), 10.0)
    assert spans(segments) == [(0.0, 5.0, 1)]


def test_single_step_shorter_than_min_clip_is_kept_as_is():
    segments = select_segments(grid_curve([0.3], 1.0), 1.0)
    assert spans(segments) == [(0.0, 1.0, 1)]
    assert segments[0].score == pytest.approx(0.3)


def test_ratio_one_selects_everything_including_the_partial_tail():
    curve = grid_curve([3, 1, 2, 0, 4, 1], 5.5)  # the last step is [5, 5.5)
    segments = select_segments(curve, 5.5, SelectionConfig(top_ratio=1.0))
    assert spans(segments) == [(0.0, 5.5, 1)]
    assert segments[0].score == pytest.approx((3 + 1 + 2 + 0 + 4 + 0.5 * 1) / 5.5)


def test_short_clip_extends_symmetrically_and_shifts_off_the_edge():
    curve = grid_curve([0, 0, 0, 0, 0, 0, 0, 0, 0, 9])
    segments = select_segments(curve, 10.0, SelectionConfig(top_ratio=0.1, min_clip_s=3.0))
    assert spans(segments) == [(7.0, 10.0, 1)]  # would be [8, 11) -> shifted back inside the video
    middle = select_segments(grid_curve([0, 0, 0, 0, 9, 0, 0, 0, 0, 0]), 10.0,
                             SelectionConfig(top_ratio=0.1, min_clip_s=2.0))
    assert spans(middle) == [(3.5, 5.5, 1)]


def test_merge_gap_joins_nearby_clips():
    curve = grid_curve([9, 0, 8, 0, 0, 0, 7, 0])
    config = SelectionConfig(top_ratio=3 / 8, min_clip_s=0.0, merge_gap_s=1.0)
    # step 0 (1 s), then step 2 bridges the 1-s gap: the run [0, 3) costs 3 s = the whole budget
    segments = select_segments(curve, 8.0, config)
    assert spans(segments) == [(0.0, 3.0, 1)]
    assert segments[0].score == pytest.approx(17.0 / 3.0)
    no_merge = select_segments(curve, 8.0, SelectionConfig(top_ratio=3 / 8, min_clip_s=0.0))
    assert spans(no_merge) == [(0.0, 1.0, 1), (2.0, 3.0, 2), (6.0, 7.0, 3)]


def test_padding_is_clipped_to_the_video_and_overlaps_merge():
    curve = grid_curve([9, 0, 0, 8, 0, 7, 0, 0])
    config = SelectionConfig(top_ratio=3 / 8, min_clip_s=0.0, pad_s=0.5)
    assert spans(select_segments(curve, 8.0, config)) == [(0.0, 1.5, 1), (2.5, 6.5, 2)]


def test_max_total_keeps_best_and_trims_the_last_clip():
    curve = grid_curve([9, 9, 9, 0, 0, 5, 5, 5, 0, 7, 7, 0])
    config = SelectionConfig(top_ratio=8 / 12, min_clip_s=0.0, max_total_s=4.5)
    # clips [0,3) 9, [5,8) 5, [9,11) 7: keep [0,3) (3 s) and the first 1.5 s of [9,11)
    segments = select_segments(curve, 12.0, config)
    assert spans(segments) == [(0.0, 3.0, 1), (9.0, 10.5, 2)]
    assert sum(s.duration_s for s in segments) == 4.5


def test_max_total_drops_a_clip_when_the_rest_is_below_min_clip():
    curve = grid_curve([9, 9, 9, 0, 0, 5, 5, 5, 0, 7, 7, 0])
    config = SelectionConfig(top_ratio=8 / 12, min_clip_s=2.0, max_total_s=4.5)
    assert spans(select_segments(curve, 12.0, config)) == [(0.0, 3.0, 1)]


def test_invalid_config_and_curves_raise_typed_errors():
    with pytest.raises(ConfigError, match="top_ratio"):
        SelectionConfig(top_ratio=0.0)
    with pytest.raises(ConfigError, match="pad_s"):
        SelectionConfig(pad_s=-1.0)
    with pytest.raises(ScoreCurveError, match="non-finite"):
        select_segments(grid_curve([1.0, np.nan]), 2.0)
