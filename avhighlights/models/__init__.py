"""Highlight methods, registered by name in `METHODS` (importing this package registers them all)."""

from avhighlights.core.sample import FeatureSource, Sample
from avhighlights.models import baselines, davihd, hpcl, joint_va, rasl, recurrence  # noqa: F401  (registration)
from avhighlights.models.base import METHODS, HighlightMethod, create_method

__all__ = ["METHODS", "FeatureSource", "HighlightMethod", "Sample", "create_method"]
