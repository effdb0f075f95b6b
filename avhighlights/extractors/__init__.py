"""Feature extractors, registered by name in `EXTRACTORS` (importing this package registers them)."""

from avhighlights.extractors import (  # noqa: F401
    efficientat,
    i3d,
    inception_pca,
    inception_yt8m,
    logmel,
    loudness,
    mobilenet_v1,
    panns,
    panns_2s,
    r3d,
    swin,
)
from avhighlights.extractors.base import EXTRACTORS, Extractor, create_extractor

__all__ = ["EXTRACTORS", "Extractor", "create_extractor"]
