"""Mr.HiSum official summary F1 (spec §8.1): knapsack over KTS shots at 15 % of the video,
reproducing the official shot-weight off-by-one (weight = end - start for inclusive rows)."""

from __future__ import annotations

import math

import numpy as np

from avhighlights.evaluation.ap import MetricInputError

SUMMARY_PROPORTION = 0.15


def knapsack_select(capacity: int, weights: list[int], values: list[float]) -> list[int]:
    """The official 0/1 knapsack DP: indices of the chosen items, in order.

    Row w = 0 stays 0 (nothing is chosen with zero capacity); an item is kept in the backtrack
    only when it changes the optimum, so ties prefer leaving items out.
    """
    n = len(weights)
    table = np.zeros((n + 1, capacity + 1))  # (items + 1, capacity + 1)
    for i in range(1, n + 1):
        w_i, v_i = weights[i - 1], values[i - 1]
        table[i] = table[i - 1]
        for w in range(max(1, w_i), capacity + 1):
            table[i, w] = max(v_i + table[i - 1, w - w_i], table[i - 1, w])
    chosen, w = [], capacity
    for i in range(n, 0, -1):
        if table[i, w] != table[i - 1, w]:
            chosen.insert(0, i - 1)
            w -= weights[i - 1]
    return chosen


def knapsack_summary(pred, change_points) -> np.ndarray:
    """The machine summary: per shot, `weight` ones (chosen) or zeros, concatenated."""
    scores = np.asarray(pred, dtype=np.float64).ravel()
    cps = np.asarray(change_points, dtype=np.int64).reshape(-1, 2)  # (shots, 2) inclusive rows
    weights = [int(end - start) for start, end in cps]
    values = [float(scores[start:end + 1].mean()) for start, end in cps]
    chosen = set(knapsack_select(math.floor(SUMMARY_PROPORTION * len(scores)), weights, values))
    parts = [np.full(w, 1 if i in chosen else 0, dtype=np.int8) for i, w in enumerate(weights)]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int8)


def f1_knapsack15(pred, change_points, gt_summary) -> float:
    """Mr.HiSum F1 (fraction, x100 in reports) of the knapsack summary against `gt_summary`.

    Both summaries are zero-padded to a common length. An empty summary (every shot heavier
    than the capacity) or an empty ground truth gives 0.
    """
    scores = np.asarray(pred, dtype=np.float64).ravel()
    if int(np.max(change_points)) >= len(scores):
        raise MetricInputError(f"f1_knapsack15: change points reach row {int(np.max(change_points))} "
                               f"but there are {len(scores)} predictions")
    machine = knapsack_summary(scores, change_points)
    truth = np.asarray(gt_summary).ravel() > 0
    length = max(len(machine), len(truth))
    s = np.pad(machine > 0, (0, length - len(machine)))
    g = np.pad(truth, (0, length - len(truth)))
    overlap = float(np.sum(s & g))
    if s.sum() == 0 or g.sum() == 0 or overlap == 0:
        return 0.0
    precision, recall = overlap / s.sum(), overlap / g.sum()
    return 2 * precision * recall / (precision + recall)
