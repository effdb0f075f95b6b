"""Features for one video from every requested extractor, through the feature store.

On a cache hit the video is not decoded at all: media is opened lazily, inside the compute step.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from avhighlights.extractors.base import Extractor
from avhighlights.models.base import ProgressFn
from avhighlights.pipeline.media import open_media
from avhighlights.pipeline.timebase import FeatureTrack, Spans, align_track
from avhighlights.pipeline.types import MediaSource, VideoInfo

MediaFactory = Callable[[VideoInfo], MediaSource]


@dataclass
class ExtractionStats:
    """Cache hits/misses and compute seconds per extractor, for reports and tests."""

    hits: list[str] = field(default_factory=list)
    misses: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def extract_features(info: VideoInfo, extractors: Sequence[Extractor], store=None,
                     media_factory: MediaFactory | None = None, progress: ProgressFn | None = None,
                     stats: ExtractionStats | None = None) -> dict[str, FeatureTrack]:
    """Tracks keyed by extractor name; cached in `store` (a FeatureStore) when given."""
    factory = media_factory or open_media
    stats = stats if stats is not None else ExtractionStats()
    tracks = {}
    for i, extractor in enumerate(extractors):
        t0 = time.monotonic()

        def compute(ex: Extractor = extractor) -> FeatureTrack:
            return ex.extract(factory(info))

        if store is None:
            track, hit = compute(), False
        else:
            track, hit = store.get_or_compute(info.sha256, extractor, compute)
        (stats.hits if hit else stats.misses).append(extractor.name)
        stats.seconds[extractor.name] = time.monotonic() - t0
        tracks[extractor.name] = track
        if progress:
            progress(f"features:{extractor.name}", 1.0)
            progress("features", (i + 1) / len(extractors))
    return tracks


def aligned_features(tracks: dict[str, FeatureTrack], grid: Spans) -> dict[str, FeatureTrack]:
    """Every track resampled onto `grid`."""
    return {name: align_track(track, grid) for name, track in tracks.items()}
