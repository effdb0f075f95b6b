"""The near-constant check: the one criterion by which `fit`, `train`, `bench` and `score` call a model's
output collapsed. Numpy only, so that both models (models/base.py re-exports it) and the light pipeline
modules (pipeline/select.py) import it without torch."""

from __future__ import annotations

import numpy as np

NEAR_CONSTANT_RTOL = 1e-3  # a score range at most this fraction of the scores' scale is a collapsed output
NEAR_CONSTANT_ATOL = 1e-7  # and any range this small (exactly equal scores, up to float noise) is one too


def score_scale(scores: np.ndarray) -> float:
    """The scale a score range is measured against: max(|max|, |min|, 1). Every method's scores are
    logits, z-scores, probabilities or norms, whose unit is 1, so below magnitude 1 the unit is the scale
    (a network collapsed at loss ln 2 outputs logits near 0 whose range is then tiny in logit units)."""
    finite = np.asarray(scores, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    return float(max(np.abs(finite).max(initial=0.0), 1.0))


def is_near_constant(scores: np.ndarray) -> bool:
    """True when a video's scores are near-constant: range max - min <= max(NEAR_CONSTANT_RTOL * scale,
    NEAR_CONSTANT_ATOL) with `score_scale` (span 1e-3 on scores of scale 1). Such a curve ranks its seconds by
    differences a thousand times smaller than the scores themselves, the output of a collapsed model
    (fit, bench and score report it). Videos of one step (or no finite score) are not judged (False).
    This tolerance is far above `pipeline.select.flat_scores_warning`'s float-rounding one (1e-6)."""
    values = np.asarray(scores, dtype=np.float64).ravel()
    values = values[np.isfinite(values)]
    if values.size <= 1:
        return False
    return float(np.ptp(values)) <= max(NEAR_CONSTANT_RTOL * score_scale(values), NEAR_CONSTANT_ATOL)
