"""The dataset interface shared by benchmarks: a `Dataset` yields `Sample`s (models/base.py) and
names its splits. Concrete datasets register by name in `DATASETS`; the data root is always a
parameter, and a missing root or file raises `DatasetError` naming the path."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from avhighlights.core.errors import ConfigError, DatasetError
from avhighlights.core.registry import Registry
from avhighlights.core.sample import FeatureSource, Sample

DATASETS: Registry[Dataset] = Registry("dataset")

UMT_SOURCES = {
    "visual": FeatureSource(name="umt_i3d_rgb_flow", version="umt-release", kind="dataset", dim=2048),
    "audio": FeatureSource(name="umt_panns_cnn14", version="umt-release", kind="dataset", dim=2048),
}
# role -> source name -> (the source, the UMT npz arrays concatenated into it); the first of each role is the default
UMT_SOURCE_OPTIONS: dict[str, dict[str, tuple[FeatureSource, tuple[str, ...]]]] = {
    "visual": {"umt_i3d_rgb_flow": (UMT_SOURCES["visual"], ("rgb", "flow")),
               "umt_i3d_rgb": (FeatureSource(name="umt_i3d_rgb", version="umt-release", kind="dataset", dim=1024),
                               ("rgb",))},
    "audio": {"umt_panns_cnn14": (UMT_SOURCES["audio"], ("audio",))},
}


@dataclass(frozen=True)
class Split:
    """One train / val / test partition; `group` is the category or domain it belongs to."""

    name: str
    train_ids: tuple[str, ...]
    val_ids: tuple[str, ...]
    test_ids: tuple[str, ...]
    group: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "group": self.group, "train": list(self.train_ids),
                "val": list(self.val_ids), "test": list(self.test_ids)}


class Dataset(ABC):
    """A benchmark dataset: `video_ids`, `sample(video_id)`, iteration, `splits()` and its
    feature sources (role -> FeatureSource)."""

    name: ClassVar[str]
    feature_sources: ClassVar[dict[str, FeatureSource]] = {}

    def __init__(self, root: str | Path):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DatasetError(f"{self.root}: dataset folder not found")
        self._cache: dict[str, Sample] = {}

    @abstractmethod
    def video_ids(self) -> list[str]:
        """Ids of every usable video (sorted)."""

    @abstractmethod
    def load_sample(self, video_id: str) -> Sample:
        """Read one video's features and labels."""

    @abstractmethod
    def splits(self) -> list[Split]:
        """The dataset's standard splits."""

    def sample(self, video_id: str) -> Sample:
        """`load_sample`, cached."""
        if video_id not in self._cache:
            self._cache[video_id] = self.load_sample(video_id)
        return self._cache[video_id]

    def samples(self, video_ids: Sequence[str]) -> list[Sample]:
        return [self.sample(v) for v in video_ids]

    def __iter__(self) -> Iterator[Sample]:
        return (self.sample(v) for v in self.video_ids())

    def __len__(self) -> int:
        return len(self.video_ids())


def require_file(path: Path) -> Path:
    """`path` if it is a file, else DatasetError naming it."""
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    return path


def read_json(path: Path) -> Any:
    try:
        return json.loads(require_file(path).read_text())
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}: invalid JSON ({exc})") from None


def read_jsonl(path: Path) -> list[dict]:
    lines = require_file(path).read_text().splitlines()
    try:
        return [json.loads(line) for line in lines if line.strip()]
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}: invalid JSON line ({exc})") from None


def umt_sources(chosen: Mapping[str, str] | None = None) -> dict[str, tuple[FeatureSource, tuple[str, ...]]]:
    """role -> (source, npz arrays) for the UMT release: each role's default unless `chosen` (role -> source
    name, e.g. {"visual": "umt_i3d_rgb"}) names another; an unknown role or source is a ConfigError listing them."""
    chosen = dict(chosen or {})
    unknown = sorted(set(chosen) - set(UMT_SOURCE_OPTIONS))
    if unknown:
        raise ConfigError(f"dataset feature roles {unknown} do not exist; roles: {sorted(UMT_SOURCE_OPTIONS)}")
    out = {}
    for role, options in UMT_SOURCE_OPTIONS.items():
        name = chosen.get(role, next(iter(options)))
        if name not in options:
            raise ConfigError(f"dataset source {name!r} for role {role!r} does not exist; choose from "
                              f"{sorted(options)}")
        out[role] = options[name]
    return out


def load_umt_features(path: Path, streams: Mapping[str, Sequence[str]] | None = None) -> dict[str, np.ndarray]:
    """UMT-release npz -> role -> its arrays concatenated, float32, every role trimmed to the shortest. Default
    `streams`: {"visual": rgb (+) flow (T, 2048), "audio": PANNs (T, 2048)}."""
    streams = streams or {role: arrays for role, (_, arrays) in umt_sources().items()}
    try:
        with np.load(require_file(path)) as npz:
            arrays = {k: np.asarray(npz[k], dtype=np.float32) for k in ("rgb", "flow", "audio")}
    except (KeyError, ValueError, OSError) as exc:
        raise DatasetError(f"{path}: not a UMT feature file with rgb/flow/audio ({exc})") from None
    n = min(len(a) for a in arrays.values())
    return {role: np.concatenate([arrays[k][:n] for k in names], axis=1) for role, names in streams.items()}


def trim_features(features: dict[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
    return {role: values[:n] for role, values in features.items()}


class UMTDataset(Dataset):
    """A dataset of UMT-release feature files (TVSum, YouTube Highlights). `sources` (role -> source name of
    `UMT_SOURCE_OPTIONS`, e.g. {"visual": "umt_i3d_rgb"}: I3D RGB only, no optical flow) picks the arrays
    each role reads; by default visual = rgb (+) flow and audio = PANNs."""

    feature_sources = UMT_SOURCES

    def __init__(self, root: str | Path, sources: Mapping[str, str] | None = None):
        super().__init__(root)
        chosen = umt_sources(sources)
        self.feature_sources = {role: src for role, (src, _) in chosen.items()}
        self._streams = {role: arrays for role, (_, arrays) in chosen.items()}

    def umt_features(self, path: Path) -> dict[str, np.ndarray]:
        return load_umt_features(path, self._streams)
