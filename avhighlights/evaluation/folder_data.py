"""A user's own benchmark: a folder of videos, each with a label file, scored on the 1-s grid.

Label files sit next to the video, named `<video stem>.labels.json` or `<video stem>.labels.csv`:

* JSON `{"scores": [s_0, s_1, ...]}`: one score per second (second i covers [i, i + 1)), in [0, 1];
* JSON `{"spans": [[start_s, end_s], ...]}`: highlight spans in seconds;
* CSV with a header `start_s,end_s`: highlight spans, one per row.

Spans become per-second labels equal to the fraction of the second they cover. An optional
`"group"` key in the JSON names a category. An optional `splits.json` in the folder
(`{"train": [...], "val": [...], "test": [...]}` of video stems) defines the split; without it
every video is a test video and nothing is trained. Features come from the injected
`features_for(video_path) -> {role: FeatureTrack}` and are aligned onto the 1-s grid.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from avhighlights.core.errors import DatasetError
from avhighlights.core.files import VIDEO_SUFFIXES
from avhighlights.core.sample import FeatureSource, Sample
from avhighlights.core.timebase import FeatureTrack, Spans, align, align_track, second_grid
from avhighlights.evaluation.datasets import DATASETS, Dataset, Split, read_json

FeaturesFn = Callable[[Path], Mapping[str, FeatureTrack]]


def span_labels(spans_s: np.ndarray, grid: Spans) -> np.ndarray:
    """Fraction of each grid step covered by the union of `spans_s` ((n, 2) seconds)."""
    covered = np.zeros(len(grid))
    for start, end in sorted(map(tuple, spans_s)):
        overlap = np.minimum(grid.end_s, end) - np.maximum(grid.start_s, start)
        covered += np.clip(overlap, 0.0, None)
    return np.clip(covered / np.maximum(grid.end_s - grid.start_s, 1e-9), 0.0, 1.0)


def _spans_from_csv(path: Path) -> np.ndarray:
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or not {"start_s", "end_s"} <= set(reader.fieldnames):
            raise DatasetError(f"{path}: CSV labels need a header with start_s,end_s")
        rows = [(float(r["start_s"]), float(r["end_s"])) for r in reader]
    return np.asarray(rows, dtype=np.float64).reshape(-1, 2)


def read_labels(path: Path, grid: Spans) -> tuple[np.ndarray, str | None]:
    """Per-second labels on `grid` and the optional group, from a JSON or CSV label file."""
    if path.suffix == ".csv":
        return span_labels(_spans_from_csv(path), grid), None
    data = read_json(path)
    if "scores" in data:
        scores = np.asarray(data["scores"], dtype=np.float64)
        step_grid = Spans.regular(len(scores), 1.0)
        return align(scores, step_grid, grid), data.get("group")
    if "spans" in data:
        return span_labels(np.asarray(data["spans"], dtype=np.float64).reshape(-1, 2), grid), data.get("group")
    raise DatasetError(f"{path}: label JSON needs 'scores' or 'spans'")


def features_on_second_grid(features_for: FeaturesFn, video: Path) -> tuple[dict[str, np.ndarray], float]:
    """Every role's track from the provider, aligned onto the video's 1-s grid, and the duration in
    seconds the tracks cover (DatasetError when the provider returns nothing)."""
    tracks = dict(features_for(video))
    if not tracks:
        raise DatasetError(f"{video}: the feature provider returned no tracks")
    duration_s = max(float(t.spans.end_s[-1]) for t in tracks.values())
    grid = second_grid(duration_s)
    return {role: align_track(t, grid).values for role, t in tracks.items()}, duration_s


@DATASETS.register("folder")
class FolderDataset(Dataset):
    """Videos in `root` that have a label file; features from `features_for`, on the 1-s grid."""

    default_protocol = "folder_1fps"
    label_meta_keys = ()

    def __init__(self, root: str | Path, features_for: FeaturesFn,
                 sources: Mapping[str, FeatureSource] | None = None):
        super().__init__(root)
        self.features_for = features_for
        self.feature_sources = dict(sources or {})
        self._videos = {p.stem: p for p in sorted(self.root.iterdir())
                        if p.suffix.lower() in VIDEO_SUFFIXES and self._label_path(p) is not None}
        if not self._videos:
            raise DatasetError(f"{self.root}: no video with a <stem>.labels.json/.csv label file")

    @staticmethod
    def _label_path(video: Path) -> Path | None:
        for suffix in (".labels.json", ".labels.csv"):
            candidate = video.with_name(video.stem + suffix)
            if candidate.is_file():
                return candidate
        return None

    def video_ids(self) -> list[str]:
        return sorted(self._videos)

    def load_sample(self, video_id: str) -> Sample:
        video = self._videos[video_id]
        features, duration_s = features_on_second_grid(self.features_for, video)
        grid = second_grid(duration_s)
        labels, group = read_labels(self._label_path(video), grid)
        meta = {"path": str(video), "duration_s": duration_s, "n_steps": len(grid)}
        return Sample(video_id, features, 1.0, labels.astype(np.float32), group, meta)

    def splits(self) -> list[Split]:
        path = self.root / "splits.json"
        if not path.is_file():
            return [Split("all", (), (), tuple(self.video_ids()), "all")]
        data = read_json(path)
        unknown = sorted({v for part in data.values() for v in part} - set(self._videos))
        if unknown:
            raise DatasetError(f"{path}: unknown videos {unknown[:5]}")
        return [Split("splits.json", *(tuple(data.get(p, ())) for p in ("train", "val", "test")), "all")]
