"""Feature extractors, registered by name in `EXTRACTORS` (importing this package registers them)."""

from avhighlights.extractors import efficientat, logmel, loudness, panns  # noqa: F401
from avhighlights.extractors.base import EXTRACTORS, Extractor, create_extractor

__all__ = ["EXTRACTORS", "Extractor", "create_extractor"]
