"""Highlight methods, registered by name in `METHODS`.

Every name is declared here with the class it lives in, without importing it: `METHODS.get(name)` (and so
`create_method` and checkpoint loading) imports only that method's module; `METHODS.load_all()` imports them all.
"""

from avhighlights.core.sample import FeatureSource, Sample
from avhighlights.models.base import METHODS, HighlightMethod, create_method

DECLARED = {
    "davihd": "avhighlights.models.davihd:DAViHDMethod",
    "feature_norm": "avhighlights.models.baselines:FeatureNormMethod",
    "hpcl": "avhighlights.models.hpcl:HPCLMethod",
    "joint_va": "avhighlights.models.joint_va:JointVAMethod",
    "loudness": "avhighlights.models.baselines:LoudnessMethod",
    "random": "avhighlights.models.baselines:RandomMethod",
    "rasl": "avhighlights.models.rasl:RASLMethod",
    "recurrence": "avhighlights.models.recurrence:RecurrenceMethod",
}
METHODS.declare_all(DECLARED)

__all__ = ["METHODS", "FeatureSource", "HighlightMethod", "Sample", "create_method"]
