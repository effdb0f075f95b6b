"""The three average-precision definitions of spec §8.0 and shared ranking helpers.

They are not interchangeable: AP-trap (UMT trapezoid), AP-step (scikit-learn
`average_precision_score`) and AP-interp (Moment-DETR). Every function takes per-item
`scores` and binary `labels` of the same length.
"""

from __future__ import annotations

import numpy as np

from avhighlights.core.errors import AVHighlightsError


class MetricInputError(AVHighlightsError, ValueError):
    """Metric inputs are inconsistent (length mismatch, wrong shape, empty)."""

    exit_code = 2


def as_pair(scores, labels, name: str) -> tuple[np.ndarray, np.ndarray]:
    """1-D float arrays of equal, non-zero length, or MetricInputError naming the metric."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels, dtype=np.float64).ravel()
    if s.shape != y.shape:
        raise MetricInputError(f"{name}: {s.size} predictions but {y.size} labels")
    if s.size == 0:
        raise MetricInputError(f"{name}: empty input")
    return s, y


def rank_descending(scores: np.ndarray) -> np.ndarray:
    """Indices sorting `scores` high to low; equal scores keep the earlier index first (stable)."""
    return np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")


def top_k_mask(values: np.ndarray, k: int) -> np.ndarray:
    """Boolean mask of the `k` highest values (ties: earlier index first)."""
    mask = np.zeros(len(values), dtype=bool)
    mask[rank_descending(values)[: max(0, k)]] = True
    return mask


def ap_trap_ranked(labels_in_order) -> float:
    """AP-trap of binary labels already in predicted order (R_0 = 0, P_0 = 1; G = 0 -> 0)."""
    y = (np.asarray(labels_in_order, dtype=np.float64) > 0).astype(np.float64)
    total = y.sum()
    if total == 0:
        return 0.0
    hits = np.cumsum(y)  # (m,)
    recall = np.concatenate([[0.0], hits / total])
    precision = np.concatenate([[1.0], hits / np.arange(1, len(y) + 1)])
    return float(np.sum(np.diff(recall) * (precision[:-1] + precision[1:]) / 2))


def ap_trap(scores, labels) -> float:
    """UMT trapezoid AP over all items ranked by `scores` (ties: earlier index first)."""
    s, y = as_pair(scores, labels, "ap_trap")
    return ap_trap_ranked(y[rank_descending(s)])


def _threshold_counts(s: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative true positives and item counts at each distinct score threshold, high to low."""
    order = rank_descending(s)
    s_sorted, y_sorted = s[order], (y[order] > 0).astype(np.float64)
    last_of_run = np.r_[np.diff(s_sorted) != 0, True]  # (m,) True at the last item of each tie run
    tp = np.cumsum(y_sorted)[last_of_run]
    count = np.arange(1, len(s) + 1, dtype=np.float64)[last_of_run]
    return tp, count


def ap_step(scores, labels) -> float:
    """scikit-learn `average_precision_score`: sum (R_n - R_n-1) P_n over distinct thresholds.

    Tied scores form one threshold. With no positive label the value is undefined; like
    scikit-learn (which warns) this returns 0.0. Callers that must skip such videos check first.
    """
    s, y = as_pair(scores, labels, "ap_step")
    tp, count = _threshold_counts(s, y)
    if tp[-1] == 0:
        return 0.0
    recall = np.concatenate([[0.0], tp / tp[-1]])
    return float(np.sum(np.diff(recall) * (tp / count)))


def ap_interp(scores, labels) -> float:
    """Moment-DETR AP (`get_ap`, interpolate=True): all-negative -> 0, all-positive -> 1.

    Otherwise, on the precision-recall curve over distinct thresholds, ordered from full recall
    down to the end point (R = 0, P = 1), precision is replaced by its running maximum from the
    full-recall end, and AP is the mean of that value at the point after every recall drop.
    With distinct scores this is the spec's "mean of max{P(r') : r' >= r} over the distinct
    recall levels"; when the top tie group holds a positive with precision < 1, Moment-DETR's end
    point (P = 1) enters the mean, and so it does here.
    """
    s, y = as_pair(scores, labels, "ap_interp")
    positive = y > 0
    if not positive.any():
        return 0.0
    if positive.all():
        return 1.0
    tp, count = _threshold_counts(s, y)
    recall = np.r_[(tp / tp[-1])[::-1], 0.0]  # full recall first, then the (0, 1) end point
    precision = np.maximum.accumulate(np.r_[(tp / count)[::-1], 1.0])
    drops = np.flatnonzero(np.diff(recall) != 0)
    return float(np.mean(precision[drops + 1]))
