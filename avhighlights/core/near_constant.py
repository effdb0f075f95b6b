"""The near-constant check: the one criterion by which `fit`, `train`, `bench` and `score` call a model's
output collapsed. Numpy only, so that both models (models/base.py re-exports it) and the light pipeline
modules (pipeline/select.py) import it without torch. `guarded_fit` is the retry-or-refuse rule that the
unsupervised methods' fits apply with it (a collapsed fit is never silently used)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from avhighlights.core.errors import ConfigError

COLLAPSED_FRACTION = 0.5  # a fit is collapsed when more than this fraction of its training videos is near-constant
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


class CollapsedFitError(ConfigError):
    """A fit whose model still gives near-constant scores after every documented retry (exit 2)."""


def guarded_fit(fit_once: Callable[[int], tuple[dict[str, Any], float]], retries: int, owner: str,
                hint: str, max_fraction: float = COLLAPSED_FRACTION) -> dict[str, Any]:
    """Run `fit_once(attempt)` (attempt 0, 1, ..., `retries`; it returns its report and the fraction of
    training videos with near-constant scores) until that fraction is at most `max_fraction`. The report
    of the accepted attempt gains `attempts` (the collapsed fractions seen). When every attempt collapsed,
    raise CollapsedFitError naming `owner` and `hint`: a collapsed model is never silently used."""
    fractions = []
    for attempt in range(retries + 1):
        report, fraction = fit_once(attempt)
        fractions.append(round(float(fraction), 4))
        if fraction <= max_fraction:
            return {**report, "attempts": fractions}
    raise CollapsedFitError(f"{owner}: the fit collapsed to near-constant scores on more than {max_fraction:.0%} of "
                            f"its training videos in all {retries + 1} attempts (fractions {fractions}); its "
                            f"scores carry no ranking and were not used. {hint}")
