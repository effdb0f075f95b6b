"""The one featurize stage of `score`, `fit` and the flows: every role's features of a video (through the feature
store) aligned onto its 1-s grid, as a `Sample`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from avhighlights.core.progress import ProgressFn
from avhighlights.core.sample import Sample
from avhighlights.core.timebase import FeatureTrack, align_track, second_grid
from avhighlights.core.types import VideoInfo
from avhighlights.extractors.base import Extractor
from avhighlights.extractors.store import FeatureStore, default_store_root
from avhighlights.pipeline.extract import ExtractionStats, extract_features


def open_store(store: str | None) -> FeatureStore | None:
    """`None` = no cache; "default" = $AVH_FEATURE_STORE or the user cache; else a folder/fsspec URL."""
    if store is None:
        return None
    return FeatureStore(default_store_root() if store == "default" else store)


@dataclass
class StoreRef:
    """The feature store of one run, opened once, on first use (a run that fails before it needs features
    creates no store folder)."""

    spec: str | None
    _opened: list[FeatureStore | None] = field(default_factory=list, repr=False)

    def __call__(self) -> FeatureStore | None:
        if not self._opened:
            self._opened.append(open_store(self.spec))
        return self._opened[0]


def build_sample(info: VideoInfo, tracks_by_role: Mapping[str, FeatureTrack]) -> Sample:
    """Align every role's track onto the video's 1-s grid."""
    grid = second_grid(info.duration_s)
    features = {role: align_track(track, grid).values for role, track in tracks_by_role.items()}
    meta = {"path": str(info.path), "n_steps": len(grid)}
    return Sample(video_id=info.sha256[:16], features=features, step_s=1.0, meta=meta)


def featurize(extractors: Mapping[str, Extractor], info: VideoInfo, store: FeatureStore | None = None, *,
              stats: ExtractionStats | None = None, progress: ProgressFn | None = None) -> Sample:
    """The 1-s grid Sample of `info` for role -> extractor (each extractor runs once, whatever the number of
    roles it feeds), features read from or written to `store` (None: no cache)."""
    unique = list({ex.name: ex for ex in extractors.values()}.values())
    tracks = extract_features(info, unique, store=store, stats=stats, progress=progress)
    return build_sample(info, {role: tracks[ex.name] for role, ex in extractors.items()})
