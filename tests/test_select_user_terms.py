"""Selection in user terms: a target length, an absolute or quantile threshold, and the flat-score warning
(expected values worked out by hand on the 10-s curve of tests/test_select.py)."""

from __future__ import annotations

import numpy as np
import pytest

from avhighlights.core.errors import ConfigError
from avhighlights.core.timebase import second_grid
from avhighlights.core.types import ScoreCurve
from avhighlights.pipeline.select import (
    SelectionConfig,
    flat_scores_warning,
    score_warnings,
    select,
    select_segments,
    selection_report,
)

SCORES = [0, 5, 0, 0, 9, 9, 0, 0, 1, 1]


def grid_curve(scores, duration_s: float | None = None) -> ScoreCurve:
    grid = second_grid(duration_s or len(scores))
    return ScoreCurve(np.asarray(scores, dtype=float), grid.start_s, grid.end_s, "hand")


def spans(segments) -> list[tuple[float, float]]:
    return [(s.start_s, s.end_s) for s in segments]


def total_s(segments) -> float:
    return sum(s.duration_s for s in segments)


def test_target_takes_the_best_seconds_up_to_the_target():
    segments = select_segments(grid_curve(SCORES), 10.0, SelectionConfig(target_s=4.0, min_clip_s=0.0))
    # steps by rank: 4, 5 (9), 1 (5), 8 (1, earlier than 9) -> 4 s exactly
    assert spans(segments) == [(1.0, 2.0), (4.0, 6.0), (8.0, 9.0)]


def test_target_counts_min_clip_extensions_and_margins():
    result = select(grid_curve(SCORES), 10.0, SelectionConfig(target_s=6.0, min_clip_s=2.0, pad_s=0.5))
    # each clip costs max(length, 2) + 2 * 0.5: steps 4-5 (3 s) and step 1 (3 s) fill the 6 s
    assert spans(result.segments) == [(0.0, 3.0), (3.5, 6.5)]
    assert total_s(result.segments) == pytest.approx(6.0) and result.mode == "target_s"
    assert result.picked_steps == [1, 4, 5] and result.threshold_score == 5.0  # the lowest picked score


def test_target_below_one_clip_selects_nothing_rather_than_overshoot():
    result = select(grid_curve(SCORES), 10.0, SelectionConfig(target_s=1.0, min_clip_s=2.0))
    assert result.segments == [] and result.threshold_score is None


def test_target_replaces_top_ratio_and_max_total_still_caps():
    curve = grid_curve(SCORES)
    assert select_segments(curve, 10.0, SelectionConfig(top_ratio=0.1, target_s=5.0)) == \
        select_segments(curve, 10.0, SelectionConfig(top_ratio=0.9, target_s=5.0))
    capped = select_segments(curve, 10.0, SelectionConfig(target_s=8.0, max_total_s=3.0, min_clip_s=0.0))
    assert total_s(capped) <= 3.0 + 1e-9


def test_absolute_threshold_selects_every_second_at_or_above_it():
    result = select(grid_curve(SCORES), 10.0, SelectionConfig(threshold=5.0, min_clip_s=0.0))
    assert spans(result.segments) == [(1.0, 2.0), (4.0, 6.0)]
    assert result.mode == "threshold" and result.threshold_score == 5.0


def test_quantile_threshold_is_the_linear_quantile_of_the_scores():
    result = select(grid_curve(SCORES), 10.0, SelectionConfig(threshold_quantile=0.8, min_clip_s=0.0))
    # sorted scores [0,0,0,0,0,1,1,5,9,9]: position 0.8 * 9 = 7.2 -> 5 + 0.2 * (9 - 5) = 5.8
    assert result.threshold_score == pytest.approx(5.8)
    assert spans(result.segments) == [(4.0, 6.0)]


def test_threshold_with_target_takes_the_best_eligible_seconds():
    config = SelectionConfig(threshold=1.0, target_s=3.0, min_clip_s=0.0)
    assert spans(select_segments(grid_curve(SCORES), 10.0, config)) == [(1.0, 2.0), (4.0, 6.0)]
    assert config.mode == "threshold+target_s"


def test_threshold_above_every_score_selects_nothing():
    result = select(grid_curve(SCORES), 10.0, SelectionConfig(threshold=10.0))
    assert result.segments == [] and result.threshold_score == 10.0


@pytest.mark.parametrize("scores", [[0.0] * 8, [3.5] * 8, [1e6, 1e6 + 0.5, 1e6], [-2.0, -2.0 - 1e-7]])
def test_flat_scores_warn(scores):
    text = flat_scores_warning(np.array(scores), "loudness")
    assert text is not None and "flat" in text and "loudness" in text
    assert score_warnings(grid_curve(scores)) != []


@pytest.mark.parametrize("scores", [SCORES, [0.0, 1e-9], [1e6, 1e6 + 2.0]])
def test_rankable_scores_do_not_warn(scores):
    assert flat_scores_warning(np.array(scores, dtype=float)) is None
    warnings = score_warnings(grid_curve(scores))
    # above float rounding, but a range within 1e-3 of the scale is near-constant (avhighlights.core.near_constant)
    assert (warnings == []) == (scores is SCORES) and all("near-constant" in w for w in warnings)


def test_non_finite_scores_warn():
    assert "no finite scores" in flat_scores_warning(np.array([np.nan, np.inf]))


@pytest.mark.parametrize("kwargs", [dict(target_s=0.0), dict(threshold=float("nan")), dict(threshold_quantile=1.5),
                                    dict(threshold=1.0, threshold_quantile=0.5), dict(target_s=-3.0)])
def test_invalid_user_terms_raise_config_errors(kwargs):
    with pytest.raises(ConfigError):
        SelectionConfig(**kwargs)


def test_json_round_trip_drops_derived_fields_and_changes_lists_non_defaults():
    config = SelectionConfig(target_s=60.0, pad_s=1.0)
    assert config.changes() == {"target_s": 60.0, "pad_s": 1.0} and SelectionConfig().changes() == {}
    data = {**vars(config), "mode": "target_s", "threshold_score": 0.3}
    assert SelectionConfig.from_json(data) == config


def test_an_empty_selection_says_why():
    curve = grid_curve(SCORES)
    summary, warnings = selection_report(curve, 10.0, SelectionConfig(threshold=10.0))
    assert summary == {"mode": "threshold", "threshold_score": 10.0}
    assert warnings == ["nothing selected: no second scores >= the threshold 10 (scores range 0 .. 9)"]
    _, warnings = selection_report(curve, 10.0, SelectionConfig(target_s=2.5, min_clip_s=2.0, pad_s=0.5))
    assert warnings == ["nothing selected: no clip fits target_s=2.5 (a clip takes at least min_clip_s + "
                        "2 * pad_s = 3 s)"]
    # default: steps 4, 5, 1, 0, 2 are picked (tests/test_select.py), the lowest of them scores 0
    assert selection_report(curve, 10.0, SelectionConfig()) == ({"mode": "top_ratio", "threshold_score": 0.0}, [])
