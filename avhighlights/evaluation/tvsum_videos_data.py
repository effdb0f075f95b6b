"""TVSum from the raw videos: `<root>/videos/<youtube id>.mp4` plus the original
`ydata-tvsum50-anno.tsv` (id, category, comma-separated per-frame scores, one row per annotator)
and, optionally, `ydata-tvsum50-info.tsv` (header row; columns category, video_id, title, url, length).

Features come from the injected `features_for(video_path) -> {role: FeatureTrack}`;
`store_features_for` builds one that runs extractors through the feature store, so a user with
the videos gets every role (e.g. DAViHD's "visual", "audio" and "logmel"). Labels are DAViHD's
1-fps ground truth (spec §1.2): annotator mean m -> (m - 1) / 4, interpolated at whole seconds
0..L-1, with L the metadata length ("m:ss") or, without the info file, the whole seconds of the
features. Splits: DAViHD's 5-fold CV (held-out fold = validation = test).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from avhighlights.core.errors import DatasetError
from avhighlights.core.sample import FeatureSource, Sample
from avhighlights.core.timebase import FeatureTrack
from avhighlights.evaluation.datasets import DATASETS, Dataset, Split
from avhighlights.evaluation.folder_data import features_on_second_grid
from avhighlights.evaluation.metrics import davihd_video_metrics
from avhighlights.evaluation.protocols import PERCENT_DAVIHD, PROTOCOLS, BenchProtocol, nanmean_metrics
from avhighlights.evaluation.tvsum_data import (
    kfold_splits,
    length_to_seconds,
    load_tvsum_frame_annotations,
    tvsum_1fps_ground_truth,
)
from avhighlights.extractors.base import Extractor, create_extractor

FeaturesFn = Callable[[Path], Mapping[str, FeatureTrack]]
ANNO_FILE = "ydata-tvsum50-anno.tsv"
INFO_FILE = "ydata-tvsum50-info.tsv"
DEFAULT_BINDING = {"visual": "r3d34", "audio": "panns_cnn14_16k", "logmel": "logmel"}  # DAViHD's roles


def store_features_for(extractors: Mapping[str, Extractor], store=None) -> FeaturesFn:
    """A `features_for(video_path)` that probes the video and runs every role's extractor
    through `extract_features` (cached in `store`, a FeatureStore, when given)."""
    from avhighlights.pipeline.extract import extract_features
    from avhighlights.pipeline.probe import probe

    def features_for(path: Path) -> dict[str, FeatureTrack]:
        tracks = extract_features(probe(path), list(extractors.values()), store)
        return {role: tracks[extractor.name] for role, extractor in extractors.items()}

    return features_for


def extractor_feature_sources(extractors: Mapping[str, Extractor]) -> dict[str, FeatureSource]:
    return {role: ex.feature_source() for role, ex in extractors.items()}


def read_lengths(path: Path) -> dict[str, int]:
    """video id -> whole seconds, from the TVSum info TSV (header row, a `length` column)."""
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    if not rows or not {"video_id", "length"} <= set(rows[0]):
        raise DatasetError(f"{path}: expected a header with video_id and length columns")
    return {row["video_id"]: length_to_seconds(row["length"]) for row in rows}


def read_categories(path: Path) -> dict[str, str]:
    """video id -> category (second column of the annotation TSV)."""
    categories = {}
    for line in path.read_text().splitlines():
        parts = line.split("\t")
        if len(parts) == 3:
            categories.setdefault(parts[0], parts[1])
    return categories


@DATASETS.register("tvsum_videos")
class TVSumVideosDataset(Dataset):
    """Raw TVSum videos with features from `features_for` on the 1-s grid and DAViHD 1-fps labels."""

    default_protocol = "davihd_5fold_1fps"
    label_meta_keys = ("frame_annotations",)

    def __init__(self, root: str | Path, features_for: FeaturesFn, sources: Mapping[str, FeatureSource] | None = None,
                 groups: Sequence[str] | None = None):
        super().__init__(root)
        self.features_for = features_for
        self.feature_sources = dict(sources or {})
        self.annotations = load_tvsum_frame_annotations(self.root / ANNO_FILE)
        self.categories = read_categories(self.root / ANNO_FILE)
        info = self.root / INFO_FILE
        self.lengths = read_lengths(info) if info.is_file() else {}
        self.groups = tuple(groups) if groups else None
        self._videos = {p.stem: p for p in sorted((self.root / "videos").glob("*.mp4")) if p.stem in self.annotations}
        if not self._videos:
            raise DatasetError(f"{self.root / 'videos'}: no <id>.mp4 with rows in {ANNO_FILE}")

    @classmethod
    def from_data_root(cls, data_root: str | Path, groups: Sequence[str] | None = None) -> TVSumVideosDataset:
        """`<data_root>/tvsum_videos` with DAViHD's default extractors and the default feature store."""
        from avhighlights.extractors.store import FeatureStore

        extractors = {role: create_extractor(name) for role, name in DEFAULT_BINDING.items()}
        return cls(Path(data_root) / "tvsum_videos", store_features_for(extractors, FeatureStore()),
                   extractor_feature_sources(extractors), groups)

    def video_ids(self) -> list[str]:
        return sorted(v for v in self._videos if self.groups is None or self.categories.get(v) in self.groups)

    def load_sample(self, video_id: str) -> Sample:
        video = self._videos[video_id]
        aligned, duration_s = features_on_second_grid(self.features_for, video)
        length_s = self.lengths.get(video_id, int(duration_s))
        labels = tvsum_1fps_ground_truth(self.annotations[video_id], length_s)
        n = min(len(next(iter(aligned.values()))), len(labels))
        if n < 1:
            raise DatasetError(f"{video}: no whole second of features and labels")
        features = {role: values[:n] for role, values in aligned.items()}
        meta = {"path": str(video), "frame_annotations": self.annotations[video_id], "length_s": length_s,
                "n_steps": n}
        return Sample(video_id, features, 1.0, labels[:n].astype(np.float32), self.categories.get(video_id), meta)

    def splits(self) -> list[Split]:
        return self.kfold_splits(0)

    def kfold_splits(self, seed: int, n_folds: int = 5) -> list[Split]:
        return kfold_splits(self.video_ids(), seed, min(n_folds, len(self.video_ids())))


@PROTOCOLS.register("davihd_5fold_1fps")
class TVSumVideosDAViHD5Fold(BenchProtocol):
    dataset = "tvsum_videos"
    metrics = dict(PERCENT_DAVIHD)
    std_over = "folds"
    notes = ("DAViHD protocol on raw TVSum videos: 1-fps labels (annotator mean - 1) / 4 interpolated to whole "
             "seconds, 5-fold CV over the sorted ids shuffled by the run seed; the held-out fold is validation "
             "and test (as in the DAViHD code, optimistic). Mean +- std over all seeds x folds.")

    def splits(self, dataset: Dataset, seed: int) -> list[Split]:
        return dataset.kfold_splits(seed)

    def evaluate(self, samples: Sequence[Sample], preds: Sequence[np.ndarray]) -> dict[str, float]:
        rows = [davihd_video_metrics(p, s.labels) for s, p in zip(samples, preds, strict=True)]
        return nanmean_metrics(rows, list(self.metrics))
