"""AP variants, DAViHD / Mr.HiSum 1-fps metrics and rank correlations against hand-computed values
(spec §8.0, §8.1, §8.2, §8.6)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, precision_recall_curve

from avhighlights.evaluation.ap import MetricInputError, ap_interp, ap_step, ap_trap, rank_descending
from avhighlights.evaluation.metrics import (
    block_means,
    davihd_video_metrics,
    f1_top50,
    kendall_tau_b,
    map_rho,
    spearman_rho,
)
from avhighlights.evaluation.mrhisum import f1_knapsack15, knapsack_select, knapsack_summary

SPEC_VECTORS = [  # labels in predicted order, AP-trap, AP-step, AP-interp (spec §8.0)
    ([1, 0, 1, 0, 0], 0.791667, 0.833333, 0.833333),
    ([0, 1, 0, 0, 0], 0.25, 0.5, 0.5),
    ([0, 1, 1], 0.416667, 0.583333, 0.666667),
    ([1, 1, 1, 1, 1], 1.0, 1.0, 1.0),
]


def _descending(n: int) -> np.ndarray:
    return np.arange(n, 0, -1, dtype=float)


@pytest.mark.parametrize("labels, trap, step, interp", SPEC_VECTORS)
def test_ap_definitions_match_spec_vectors(labels, trap, step, interp):
    scores = _descending(len(labels))
    assert ap_trap(scores, labels) == pytest.approx(trap, abs=1e-6)
    assert ap_step(scores, labels) == pytest.approx(step, abs=1e-6)
    assert ap_interp(scores, labels) == pytest.approx(interp, abs=1e-6)


def test_all_negative_labels_give_zero_for_every_ap():
    scores = _descending(4)
    assert ap_trap(scores, [0, 0, 0, 0]) == 0.0
    assert ap_interp(scores, [0, 0, 0, 0]) == 0.0
    assert ap_step(scores, [0, 0, 0, 0]) == 0.0  # undefined; guarded to 0 like scikit-learn


def test_tied_scores_form_one_threshold_for_step_and_interp():
    scores, labels = [0.5, 0.5, 0.2], [1, 0, 1]
    # threshold 0.5: P = 1/2, R = 1/2; threshold 0.2: P = 2/3, R = 1
    assert ap_step(scores, labels) == pytest.approx(0.5 * 0.5 + 0.5 * 2 / 3)
    # Moment-DETR: curve (R, P) = (1, 2/3), (1/2, 1/2), end (0, 1); running max 2/3, 2/3, 1;
    # values after the two recall drops: 2/3 and 1 (the top tie group's precision is < 1)
    assert ap_interp(scores, labels) == pytest.approx((2 / 3 + 1) / 2)
    # AP-trap ranks ties earlier index first: (1, 0, 1) versus (0, 1, 1) when swapped
    assert ap_trap(scores, labels) == pytest.approx(0.791667, abs=1e-6)
    assert ap_trap(scores, [0, 1, 1]) == pytest.approx(0.416667, abs=1e-6)


def test_rank_descending_is_stable():
    assert rank_descending(np.array([0.2, 0.9, 0.2, 0.9])).tolist() == [1, 3, 0, 2]


def _moment_detr_ap(y_true, y_pred):
    """Moment-DETR's get_ap (interpolate=True), written from its published definition."""
    if not np.any(y_true):
        return 0.0
    if np.all(y_true):
        return 1.0
    precision, recall, _ = precision_recall_curve(y_true, y_pred)
    recall = recall.astype(np.float32)
    for i in range(1, len(precision)):
        precision[i] = max(precision[i - 1], precision[i])
    return float(np.mean(precision[1:][np.where(np.diff(recall))]))


def test_ap_step_and_interp_agree_with_reference_implementations_on_ties():
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(2, 30))
        scores = rng.integers(0, 5, n).astype(float)  # many ties
        labels = rng.integers(0, 2, n)
        if labels.any():
            assert ap_step(scores, labels) == pytest.approx(average_precision_score(labels, scores))
        assert ap_interp(scores, labels) == pytest.approx(_moment_detr_ap(labels, scores), abs=1e-6)


def test_ap_is_invariant_to_monotone_transforms():
    rng = np.random.default_rng(1)
    scores, labels = rng.normal(size=40), rng.integers(0, 2, 40)
    softmax = np.exp(scores) / np.exp(scores).sum()
    for ap in (ap_trap, ap_step, ap_interp):
        assert ap(softmax, labels) == pytest.approx(ap(scores, labels))
        assert ap(3 * scores + 7, labels) == pytest.approx(ap(scores, labels))


def test_length_mismatch_and_empty_input_raise_typed_errors():
    with pytest.raises(MetricInputError, match="ap_trap: 3 predictions but 2 labels"):
        ap_trap([1, 2, 3], [0, 1])
    with pytest.raises(MetricInputError, match="empty"):
        ap_step([], [])
    with pytest.raises(MetricInputError):
        f1_top50([1, 2], [1, 2, 3])


def test_f1_top50_spec_vector_and_ties():
    assert f1_top50([0.9, 0.1, 0.8, 0.2], [1.0, 0.0, 0.0, 0.5]) == pytest.approx(0.5)
    # all-equal predictions: S = {0, 1} (earlier first); G = {2, 3}
    assert f1_top50([0.3] * 4, [0, 0, 1, 1]) == 0.0
    assert f1_top50([0.3] * 4, [1, 1, 0, 0]) == 1.0
    # T = 1 -> k = max(1, 0) = 1
    assert f1_top50([0.2], [0.7]) == 1.0


def test_block_means_keep_a_short_last_block():
    np.testing.assert_allclose(block_means(np.arange(12.0)), [2.0, 7.0, 10.5])


def test_map_rho_blocks_rank_binarisation_and_guards():
    gt = np.r_[np.zeros(5), np.ones(5), [0.5, 0.5]]  # blocks 0, 1, 0.5
    pred = np.r_[np.ones(5), np.zeros(5), [0.8, 0.6]]  # blocks 1, 0, 0.7 -> positive ranked last
    assert map_rho(pred, gt, 0.5) == pytest.approx(1 / 3)
    assert map_rho(pred, gt, 0.15) == pytest.approx(1 / 3)  # k = max(1, floor(0.45)) = 1
    assert np.isnan(map_rho(pred, gt, 0.15, guard=False))  # official: k = 0 -> undefined
    assert map_rho([0.3, 0.1, 0.2], [0.1, 0.9, 0.3], 0.5) == 1.0  # T <= 5: one segment


def test_map_rho_davihd_clips_predictions_to_50():
    gt = np.r_[np.zeros(5), np.ones(5)]
    pred = np.r_[np.full(5, 60.0), np.full(5, 100.0)]
    assert map_rho(pred, gt, 0.5, guard=False) == 1.0
    assert map_rho(pred, gt, 0.5, guard=True) == 0.5  # both blocks clip to 50: one tied threshold


def test_rank_correlations_spec_vector_and_constant_input():
    x, y = [1, 2, 3, 4], [1, 1, 2, 2]
    assert kendall_tau_b(x, y) == pytest.approx(0.816497, abs=1e-6)
    assert spearman_rho(x, y) == pytest.approx(0.894427, abs=1e-6)
    assert kendall_tau_b([1, 1, 1, 1], y) == 0.0
    assert spearman_rho([1, 1, 1, 1], y) == 0.0


def test_davihd_video_metrics_skip_rules():
    short = davihd_video_metrics([0.5], [1.0])
    assert all(np.isnan(v) for v in short.values())
    zero_gt = davihd_video_metrics([0.1, 0.5, 0.3], [0.0, 0.0, 0.0])
    assert np.isnan(zero_gt["f1_top50"]) and np.isnan(zero_gt["map50"]) and zero_gt["rho"] == 0.0
    nan_pred = davihd_video_metrics([np.nan, 0.5, 0.3, 0.1], [0.0, 1.0, 0.5, 0.0])
    assert nan_pred["f1_top50"] == pytest.approx(1.0)  # NaN -> 0: top-2 = {1, 2} = GT top-2


def test_knapsack_uses_shot_weight_end_minus_start():
    # n = 20 -> capacity floor(0.15 * 20) = 3; weights end - start = 3, 0, 4, 9
    cps = np.array([[0, 3], [4, 4], [5, 9], [10, 19]])
    pred = np.r_[np.full(4, 0.5), [0.9], np.full(5, 0.8), np.full(10, 0.1)]
    assert knapsack_select(3, [3, 0, 4, 9], [0.5, 0.9, 0.8, 0.1]) == [0, 1]
    summary = knapsack_summary(pred, cps)
    assert len(summary) == 16 and summary.tolist() == [1, 1, 1] + [0] * 13
    gt = np.zeros(20, dtype=int)
    gt[:4] = 1  # |S & G| = 3, P = 1, R = 3/4
    assert f1_knapsack15(pred, cps, gt) == pytest.approx(2 * 0.75 / 1.75)


def test_knapsack_empty_summary_gives_zero():
    cps = np.array([[0, 4], [5, 9]])  # capacity 1, both weights 4
    assert knapsack_summary(np.ones(10), cps).sum() == 0
    assert f1_knapsack15(np.ones(10), cps, np.ones(10)) == 0.0


def test_knapsack_rejects_change_points_past_the_predictions():
    with pytest.raises(MetricInputError, match="change points"):
        f1_knapsack15(np.ones(5), np.array([[0, 9]]), np.ones(10))
