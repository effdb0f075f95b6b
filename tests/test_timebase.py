"""The time base: grid rule, spans, and `align` in both directions with hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from avhighlights.core.timebase import (
    MIN_TAIL_S,
    FeatureTrack,
    Spans,
    align,
    align_track,
    grid_steps,
    second_grid,
)


@pytest.mark.parametrize(
    ("duration_s", "expected"),
    [(10.0, 10), (10.2, 10), (10.25, 11), (10.9, 11), (0.1, 1), (1.0, 1), (70.5, 71)],
)
def test_grid_rule_keeps_a_tail_of_at_least_min_tail(duration_s, expected):
    assert MIN_TAIL_S == 0.25
    assert grid_steps(duration_s) == expected


def test_second_grid_clips_the_last_step_to_the_duration():
    grid = second_grid(3.5)
    np.testing.assert_allclose(grid.start_s, [0, 1, 2, 3])
    np.testing.assert_allclose(grid.end_s, [1, 2, 3, 3.5])


def test_grid_rejects_non_positive_duration():
    with pytest.raises(ValueError):
        grid_steps(0.0)


def test_align_averages_fine_hops_onto_seconds():
    values = np.arange(10, dtype=np.float32)  # 0.2-s hop over 2 s
    out = align(values, Spans.regular(10, 0.2), second_grid(2.0))
    np.testing.assert_allclose(out, [2.0, 7.0])  # mean(0..4), mean(5..9)


def test_align_repeats_coarse_clips_onto_seconds():
    values = np.array([[1.0], [5.0]], dtype=np.float32)  # 2-s clips
    out = align(values, Spans.regular(2, 2.0), second_grid(4.0))
    np.testing.assert_allclose(out[:, 0], [1, 1, 5, 5])


def test_align_weights_by_overlap_for_overlapping_windows():
    # YouTube-style windows: 4 s long every 2 s -> second 3 is covered by windows 0 ([0,4)) and 1 ([2,6)).
    values = np.array([0.0, 10.0, 20.0])
    src = Spans.regular(3, 2.0, window_s=4.0)
    out = align(values, src, second_grid(8.0))
    np.testing.assert_allclose(out, [0, 0, 5, 5, 15, 15, 20, 20])


def test_align_maps_seconds_back_onto_clips():
    scores = np.array([1.0, 3.0, 5.0, 7.0, 9.0])
    clips = Spans(np.array([0.0, 1.5, 3.0]), np.array([2.0, 3.0, 5.0]))
    # [1.5, 3): half of second 1 (3.0) and all of second 2 (5.0) -> (0.5*3 + 1*5) / 1.5
    np.testing.assert_allclose(align(scores, second_grid(5.0), clips), [2.0, 6.5 / 1.5, 8.0])


def test_align_beyond_the_source_takes_the_nearest_row():
    out = align(np.array([1.0, 2.0]), Spans.regular(2, 1.0), second_grid(4.0))
    np.testing.assert_allclose(out, [1, 2, 2, 2])


def test_align_round_trip_through_a_finer_grid_is_identity():
    values = np.random.default_rng(0).normal(size=(7, 3)).astype(np.float32)
    coarse = second_grid(7.0)
    fine = Spans.regular(35, 0.2)
    np.testing.assert_allclose(align(align(values, coarse, fine), fine, coarse), values, rtol=1e-6)


def test_feature_track_checks_shapes_and_aligns():
    track = FeatureTrack.regular(np.ones((4, 2)), hop_s=0.5, name="x")
    assert track.dim == 2 and len(track) == 4
    assert len(align_track(track, second_grid(2.0))) == 2
    with pytest.raises(ValueError):
        FeatureTrack(np.ones((3, 2), np.float32), Spans.regular(4, 1.0))


def test_spans_reject_negative_length():
    with pytest.raises(ValueError):
        Spans(np.array([1.0]), np.array([0.5]))
