"""Features for one video from every requested extractor, through the feature store.

On a cache hit the video is not decoded at all: media is opened lazily, inside the compute step.
The extractors that declare their frames (`Extractor.media_request`) and miss the store are served together by
one decode of the video (`VideoMedia.serve`, the shared pass); the others pull from their own media.
Each extractor reports its progress in seconds of video (stage `features:<name>`) as it finishes batches.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from avhighlights.core.errors import FeatureStoreError
from avhighlights.core.progress import ProgressFn
from avhighlights.core.timebase import FeatureTrack, Spans, align_track
from avhighlights.core.types import MediaSource, VideoInfo
from avhighlights.extractors.base import Extractor, batch_done_s
from avhighlights.pipeline.media import open_media
from avhighlights.pipeline.progress import report_count

MediaFactory = Callable[[VideoInfo], MediaSource]
PROGRESS_STEP = 0.01  # report an extractor's progress when it has moved by 1 % of the video (or finished)
VIDEO_SECONDS = "s of video"


class ProgressMedia:
    """A `MediaSource` that forwards everything to `media` and turns the extractors' `report_progress(done_s)`
    calls (see `extractors.base.report_media_progress`) into counted progress for `stage`."""

    def __init__(self, media: MediaSource, progress: ProgressFn, stage: str):
        self._media, self._progress, self._stage = media, progress, stage
        self.info = media.info
        self._reported_s = 0.0

    def __getattr__(self, name: str):
        return getattr(self._media, name)

    def report_progress(self, done_s: float) -> None:
        total_s = self.info.duration_s
        done_s = min(max(done_s, self._reported_s), total_s)
        if done_s - self._reported_s >= PROGRESS_STEP * total_s or (done_s >= total_s > self._reported_s):
            self._reported_s = done_s
            report_count(self._progress, self._stage, done_s, total_s, VIDEO_SECONDS)

    def finish(self) -> None:
        """The extractor is done: report the whole video unless that was the last report already."""
        if self._reported_s < self.info.duration_s or self.info.duration_s == 0:
            self._reported_s = self.info.duration_s
            report_count(self._progress, self._stage, self._reported_s, self.info.duration_s, VIDEO_SECONDS)


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
    shared = SharedPass(info, [ex for ex in extractors if _is_missing(info, ex, store)], factory, progress)
    tracks = {}
    for i, extractor in enumerate(extractors):
        t0 = time.monotonic()

        def compute(ex: Extractor = extractor) -> FeatureTrack:
            if shared.serves(ex):
                return shared.track(ex)
            if not progress:
                return ex.extract(factory(info))
            media = ProgressMedia(factory(info), progress, f"features:{ex.name}")
            report_count(progress, f"features:{ex.name}", 0.0, info.duration_s, VIDEO_SECONDS)
            track = ex.extract(media)
            media.finish()
            return track

        if store is None:
            track, hit = compute(), False
        else:
            track, hit = store.get_or_compute(info.sha256, extractor, compute)
        (stats.hits if hit else stats.misses).append(extractor.name)
        stats.seconds[extractor.name] = time.monotonic() - t0
        tracks[extractor.name] = track
        if progress:
            if hit:  # read from the store: the whole video at once
                report_count(progress, f"features:{extractor.name}", info.duration_s, info.duration_s, VIDEO_SECONDS)
            report_count(progress, "features", i + 1, len(extractors), "extractors")
    return tracks


def _is_missing(info: VideoInfo, extractor: Extractor, store) -> bool:
    """True when `store` has no usable entry: absent, or corrupt (`get_or_compute` then removes and recomputes it,
    with one warning, so the shared decode pass must serve this extractor too)."""
    if store is None:
        return True
    try:
        return store.get(store.key_for(info.sha256, extractor)) is None
    except FeatureStoreError:
        return True


class SharedPass:
    """The tracks of every given extractor that declares a media request, computed together on first demand
    from one `serve` call on one media (when the media has no `serve`, each extractor pulls on its own)."""

    def __init__(self, info: VideoInfo, extractors: Sequence[Extractor], factory: MediaFactory,
                 progress: ProgressFn | None):
        self._info, self._factory, self._progress = info, factory, progress
        self._requests = {ex.name: (ex, ex.media_request(info)) for ex in extractors}
        self._requests = {name: pair for name, pair in self._requests.items() if pair[1] is not None}
        self._tracks: dict[str, FeatureTrack] | None = None

    def serves(self, extractor: Extractor) -> bool:
        return extractor.name in self._requests and self._requests[extractor.name][0] is extractor

    def track(self, extractor: Extractor) -> FeatureTrack:
        if self._tracks is None:
            self._tracks = self._run()
        return self._tracks.pop(extractor.name)

    def _run(self) -> dict[str, FeatureTrack]:
        media = self._factory(self._info)
        pairs = list(self._requests.values())
        if not hasattr(media, "serve"):
            return {ex.name: ex.extract(media) for ex, _ in pairs}
        rows: list[list] = [[] for _ in pairs]
        reporters = [self._reporter(ex) for ex, _ in pairs]
        for number, batch in media.serve([request for _, request in pairs]):
            extractor = pairs[number][0]
            rows[number].append(extractor.embed_batch(batch))
            if reporters[number] is not None:
                reporters[number].report_progress(batch_done_s(batch, extractor.hop_s, self._info.duration_s))
        for reporter in reporters:
            if reporter is not None:
                reporter.finish()
        close = getattr(media, "close", None)
        if callable(close):
            close()
        return {ex.name: ex.track_from_rows(r, self._info) for (ex, _), r in zip(pairs, rows, strict=True)}

    def _reporter(self, extractor: Extractor) -> ProgressMedia | None:
        if not self._progress:
            return None
        report_count(self._progress, f"features:{extractor.name}", 0.0, self._info.duration_s, VIDEO_SECONDS)
        return ProgressMedia(_InfoOnly(self._info), self._progress, f"features:{extractor.name}")


@dataclass(frozen=True)
class _InfoOnly:
    info: VideoInfo


def aligned_features(tracks: dict[str, FeatureTrack], grid: Spans) -> dict[str, FeatureTrack]:
    """Every track resampled onto `grid`."""
    return {name: align_track(track, grid) for name, track in tracks.items()}
