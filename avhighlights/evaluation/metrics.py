"""1-fps highlight metrics of Mr.HiSum and DAViHD (spec §8.1, §8.2): F1 top-50 %, mAP@rho on 5-s
blocks, and per-video rank correlations. All values are fractions (reports multiply by 100)."""

from __future__ import annotations

import math

import numpy as np

from avhighlights.evaluation.ap import ap_step, as_pair, top_k_mask

BLOCK_STEPS = 5  # Mr.HiSum segments: consecutive 5-step (5-s) blocks from t = 0
DAVIHD_SCORE_CLIP = 50.0  # DAViHD clips predictions to [-50, 50] before its (monotone) softmax


def f1_top50(pred, gt) -> float:
    """DAViHD F1: S = top-k predicted steps, G = top-k ground-truth steps, k = max(1, floor(T/2)).

    |S| = |G|, so F1 = P = R = |S & G| / k. Ties rank the earlier step first.
    """
    p, g = as_pair(pred, gt, "f1_top50")
    k = max(1, len(p) // 2)
    overlap = np.sum(top_k_mask(p, k) & top_k_mask(g, k))
    return float(overlap / k)


def block_means(values, block_steps: int = BLOCK_STEPS) -> np.ndarray:
    """Means of consecutive blocks of `block_steps` values; the last block may be shorter."""
    v = np.asarray(values, dtype=np.float64).ravel()
    starts = np.arange(0, len(v), block_steps)
    return np.add.reduceat(v, starts) / np.diff(np.r_[starts, len(v)])


def rho_positive_count(n_segments: int, rho: float, guard: bool) -> int:
    """Top-k count for mAP@rho: floor(rho * N); with `guard` (DAViHD) at least 1."""
    k = math.floor(rho * n_segments + 1e-9)
    return max(1, k) if guard else k


def map_rho(pred, gt, rho: float, guard: bool = True) -> float:
    """AP-step of 5-s block-mean predictions against rank-binarised block-mean ground truth.

    The top floor(rho * N_seg) ground-truth blocks are positive (ties: earlier block first).
    `guard=True` is DAViHD (k >= 1, predictions clipped to [-50, 50]); `guard=False` is the
    official Mr.HiSum rule, where k = 0 makes AP undefined: NaN is returned and callers skip it.
    """
    p, g = as_pair(pred, gt, "map_rho")
    if guard:
        p = np.clip(p, -DAVIHD_SCORE_CLIP, DAVIHD_SCORE_CLIP)
    gt_blocks, pred_blocks = block_means(g), block_means(p)
    k = rho_positive_count(len(gt_blocks), rho, guard)
    if k == 0:
        return float("nan")
    return ap_step(pred_blocks, top_k_mask(gt_blocks, k))


def _constant(values: np.ndarray) -> bool:
    """True for fewer than 2 values or all equal (the correlation is NaN there)."""
    return len(values) < 2 or bool(np.all(values == values[0]))


def _nan_to_zero(value: float) -> float:
    return 0.0 if not np.isfinite(value) else float(value)


def spearman_rho(pred, gt) -> float:
    """Spearman rho with average ranks (scipy); NaN from constant input becomes 0."""
    from scipy import stats  # here: importing the metrics (models.davihd does) must not load scipy.stats

    p, g = as_pair(pred, gt, "spearman_rho")
    if _constant(p) or _constant(g):
        return 0.0
    return _nan_to_zero(stats.spearmanr(p, g).statistic)


def kendall_tau_b(pred, gt) -> float:
    """Kendall tau-b (tie-corrected, scipy default); NaN from constant input becomes 0."""
    from scipy import stats

    p, g = as_pair(pred, gt, "kendall_tau_b")
    if _constant(p) or _constant(g):
        return 0.0
    return _nan_to_zero(stats.kendalltau(p, g, variant="b").statistic)


def davihd_video_metrics(pred, gt) -> dict[str, float]:
    """The four DAViHD per-video metrics on the 1-fps grid (NaN where DAViHD skips the video).

    Videos with fewer than 2 steps are skipped for all metrics; F1 and mAP also skip videos whose
    ground truth is all zero.
    """
    p, g = as_pair(pred, gt, "davihd_video_metrics")
    p = np.nan_to_num(p, nan=0.0)  # DAViHD replaces NaN outputs by 0 at evaluation
    nan = float("nan")
    if len(p) < 2:
        return {"f1_top50": nan, "map50": nan, "map15": nan, "rho": nan, "tau": nan}
    ranked_ok = bool(np.any(g != 0))
    return {
        "f1_top50": f1_top50(p, g) if ranked_ok else nan,
        "map50": map_rho(p, g, 0.5) if ranked_ok else nan,
        "map15": map_rho(p, g, 0.15) if ranked_ok else nan,
        "rho": spearman_rho(p, g),
        "tau": kendall_tau_b(p, g),
    }
