"""TVSum top-5 (UMT, MINI-Net), YouTube and QVHighlights metrics against hand-computed values
(spec §8.3-§8.6)."""

from __future__ import annotations

import numpy as np
import pytest

from avhighlights.evaluation.ap import MetricInputError
from avhighlights.evaluation.highlight_metrics import (
    clip_to_frame_scores,
    constant_runs,
    lower_median,
    pad_or_truncate,
    qvhighlights_map_hit1,
    top5_ap,
    tvsum_dataset_map,
    tvsum_top5_map_mininet,
    tvsum_top5_map_umt,
    youtube_map,
    youtube_video_ap,
)


def test_lower_median_differs_from_the_midpoint():
    scores = [4, 1, 2, 4]  # sorted 1 2 4 4: middles 2 and 4
    assert lower_median(scores) == 2.0 and np.median(scores) == 3.0
    assert lower_median([3, 1, 2]) == 2.0
    # with integer scores and a strict '>' both medians select the same clips (no score lies in (2, 3])
    col = np.array(scores)
    assert ((col > lower_median(col)) == (col > np.median(col))).all()


def test_top5_counts_positives_only_inside_the_top_5():
    pred = np.arange(8, 0, -1, dtype=float)  # rank = index
    positive = np.array([1, 0, 0, 0, 0, 0, 1, 1])
    assert top5_ap(pred, positive) == 1.0  # G = 1 inside the top 5, found first
    assert top5_ap(pred, np.r_[np.zeros(5), np.ones(3)]) == 0.0


def test_tvsum_umt_uses_each_annotators_lower_median():
    pred = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    a1 = [1, 1, 1, 3, 5, 5]  # lower median 1 -> positives clips 3, 4, 5; clips 3, 4 inside the top 5
    a2 = [5, 1, 1, 1, 1, 1]  # lower median 1 -> positive at rank 1
    annotations = np.array([a1, a2], dtype=float).T  # (clips, annotators)
    # a1 top-5 labels 0,0,0,1,1 (G = 2): P_3 = 0, then R .5 at j=4 (P 1/4), R 1 at j=5 (P 2/5)
    ap1 = 0.5 * (0 + 1 / 4) / 2 + 0.5 * (1 / 4 + 2 / 5) / 2  # = 0.225
    assert tvsum_top5_map_umt(pred, annotations) == pytest.approx((ap1 + 1.0) / 2)
    assert tvsum_dataset_map([0.1234567, 0.2]) == 0.16173


def test_tvsum_umt_rejects_mismatched_annotations():
    with pytest.raises(MetricInputError, match="annotations of shape"):
        tvsum_top5_map_umt(np.ones(4), np.ones((5, 20)))


def test_constant_runs_split_into_sub_shots():
    assert constant_runs(np.array([5, 5, 5, 1, 1, 3]), 2) == [(0, 2), (2, 3), (3, 5), (5, 6)]


def test_mininet_variant_by_hand():
    # fps 1 -> sub-shots of at most 2 frames: shots (scores) 5, 5, 1, 3 -> top 2 positive: shots 0, 1
    frames = np.array([[5, 5, 5, 1, 1, 3]], dtype=float).T
    frame_pred = np.array([0.1, 0.2, 0.9, 0.8, 0.0, 0.5])  # shot means .15, .9, .4, .5
    # ranked shots 1, 3, 2, 0 -> labels 1, 0, 0, 1: .5 + .5 * (1/3 + 1/2) / 2
    assert tvsum_top5_map_mininet(frame_pred, frames, fps=1.0) == pytest.approx(0.5 + 0.5 * (1 / 3 + 1 / 2) / 2)


def test_clip_to_frame_scores_follows_two_second_clips():
    np.testing.assert_array_equal(clip_to_frame_scores([1.0, 2.0], 6, fps=1.0), [1, 1, 2, 2, 2, 2])


def test_youtube_ap_over_all_clips_and_zero_without_positives():
    pred = [0.9, 0.8, 0.7, 0.6, 0.5]
    assert youtube_video_ap(pred, [1, -1, 1, 0, -1]) == pytest.approx(0.791667, abs=1e-6)
    assert youtube_video_ap(pred, [0, -1, 0, 0, -1]) == 0.0  # borderline 0 is negative
    assert youtube_map([pred, pred], [[1, -1, 1, 0, -1], [-1] * 5]) == pytest.approx(0.791667 / 2, abs=1e-6)
    with pytest.raises(MetricInputError):
        youtube_map([pred], [])


def test_pad_or_truncate():
    np.testing.assert_array_equal(pad_or_truncate([1, 2], 4), [1, 2, 0, 0])
    np.testing.assert_array_equal(pad_or_truncate([1, 2, 3, 4, 5], 3), [1, 2, 3])


def test_qvhighlights_padding_truncation_and_hit1_any_annotator():
    records = [
        {"qid": 1, "duration": 9, "relevant_clip_ids": [1, 2], "saliency_scores": [[4, 0, 1], [2, 4, 4]]},
        {"qid": 2, "duration": 8, "relevant_clip_ids": [3], "saliency_scores": [[4, 4, 4]]},
    ]
    preds = {1: [0.1, 0.9, 0.3, 0.2, 5.0, 6.0],  # truncated to 4 clips; arg-max clip 1 (annotator 0 says 4)
             2: [0.0, -1.0]}  # padded to [0, -1, 0, 0]: arg-max clip 0 is a miss; positive clip 3 ties at 0
    # APs: q1 = 1, 1/2, 1/2; q2: clips 0, 2, 3 tie at the top (P = 1/3 at R = 1), and Moment-DETR's
    # curve then drops to its end point (R = 0, P = 1), so each annotator's AP is 1: mean 5/6
    result = qvhighlights_map_hit1(preds, records)
    assert result == {"hl_map": 83.33, "hit1": 50.0}


def test_qvhighlights_rejects_a_query_without_clips():
    with pytest.raises(MetricInputError, match="shorter than one 2-s clip"):
        qvhighlights_map_hit1({1: [0.5]}, [{"qid": 1, "duration": 1, "relevant_clip_ids": [],
                                            "saliency_scores": []}])
