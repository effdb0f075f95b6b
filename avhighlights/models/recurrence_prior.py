"""Label-free per-step priors and their fusion with recurrence pseudo-scores (our recipe, issue #14).

* `motion_prior`: the L2 norm of each step's visual feature (what the training-free `feature_norm`
  baseline scores). On I3D rgb+flow features the norm grows with motion and salient content.
* `rank_unit`: within-video ranks scaled to [0, 1] (ties share their mean rank), so that scores of
  different units (norms, cosine similarities) can be added.
* `fused_scores`: rank_unit(recurrence) + motion_weight * rank_unit(prior), the pseudo-scores of
  the `ours` recipe of `recurrence` (motion_weight 0 returns the recurrence scores unchanged: the paper).
* `combined_scores`: rank_unit(prior) + weight * rank_unit(recurrence) (the ablation's parametrisation).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata


def motion_prior(visual: np.ndarray) -> np.ndarray:
    """||v_t||_2 for every step of a (T, D) visual feature (T,)."""
    return np.linalg.norm(np.asarray(visual, dtype=np.float64), axis=1)


def rank_unit(scores: np.ndarray) -> np.ndarray:
    """Ranks of `scores` within the video scaled to [0, 1]; a constant or 1-step input gives 0.5."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.size <= 1 or np.ptp(scores) == 0:
        return np.full(scores.shape, 0.5)
    return (rankdata(scores) - 1.0) / (scores.size - 1.0)


def combined_scores(prior: np.ndarray, recurrence: np.ndarray, weight: float) -> np.ndarray:
    """rank_unit(prior) + weight * rank_unit(recurrence), per step (T,)."""
    return rank_unit(prior) + weight * rank_unit(recurrence)


def fused_scores(recurrence: np.ndarray, prior: np.ndarray, motion_weight: float) -> np.ndarray:
    """rank_unit(recurrence) + motion_weight * rank_unit(prior); `recurrence` itself when the weight is 0."""
    if motion_weight == 0:
        return np.asarray(recurrence, dtype=np.float64)
    return rank_unit(recurrence) + motion_weight * rank_unit(prior)
