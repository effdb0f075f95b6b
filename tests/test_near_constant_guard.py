"""The collapse guard shared by the unsupervised fits (core/near_constant.guarded_fit) and the recurrence
recipe's rank fusion (models/recurrence_prior.py)."""

from __future__ import annotations

import numpy as np
import pytest

from avhighlights.core.errors import ConfigError
from avhighlights.core.near_constant import CollapsedFitError, guarded_fit
from avhighlights.models.recurrence_prior import fused_scores, motion_prior, rank_unit


def test_the_first_attempt_that_is_not_collapsed_is_accepted():
    seen = []

    def fit_once(attempt):
        seen.append(attempt)
        return {"attempt": attempt}, [1.0, 0.75, 0.1][attempt]

    report = guarded_fit(fit_once, retries=2, owner="m", hint="h")
    assert seen == [0, 1, 2] and report == {"attempt": 2, "attempts": [1.0, 0.75, 0.1]}


def test_a_fit_collapsed_in_every_attempt_is_refused_naming_owner_and_hint():
    with pytest.raises(CollapsedFitError, match=r"rasl: .* all 2 attempts \(fractions \[1.0, 0.6\]\).*Try this"):
        guarded_fit(lambda a: ({}, [1.0, 0.6][a]), retries=1, owner="rasl", hint="Try this.")
    assert issubclass(CollapsedFitError, ConfigError)


def test_exactly_half_collapsed_is_still_accepted():
    assert guarded_fit(lambda a: ({}, 0.5), retries=0, owner="m", hint="h")["attempts"] == [0.5]


def test_rank_fusion():
    np.testing.assert_allclose(rank_unit(np.array([3.0, 1.0, 2.0])), [1.0, 0.0, 0.5])
    np.testing.assert_allclose(rank_unit(np.ones(4)), 0.5)
    rec, prior = np.array([0.1, 0.3, 0.2]), np.array([5.0, 1.0, 9.0])
    np.testing.assert_array_equal(fused_scores(rec, prior, 0.0), rec)  # the paper: recurrence unchanged
    np.testing.assert_allclose(fused_scores(rec, prior, 2.0), [0.0 + 2 * 0.5, 1.0 + 0.0, 0.5 + 2 * 1.0])
    np.testing.assert_allclose(motion_prior(np.array([[3.0, 4.0], [0.0, 1.0]])), [5.0, 1.0])
