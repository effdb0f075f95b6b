"""Cross-dataset protocols for unsupervised pretraining (RASL): train on every video of a source
dataset without labels, evaluate on a target dataset it never saw.

* dataset `youtube_to_tvsum`, protocol `xdata_tvsum_top5`: pretrain on all YouTube Highlights
  videos with features, test on all 50 TVSum videos; UMT top-5 mAP per category (mean over its 5
  videos) and their mean.
* dataset `tvsum_to_youtube`, protocol `xdata_youtube`: pretrain on all 50 TVSum videos, test on
  the UMT test list of each YouTube domain; mAP per domain and their mean.

One model per seed (a single split), so per-group numbers are metric columns. Source ids carry
the prefix `src/`. Importing this module registers both datasets and protocols.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np

from avhighlights.core.sample import Sample
from avhighlights.evaluation.datasets import DATASETS, UMT_SOURCES, Dataset, Split
from avhighlights.evaluation.highlight_metrics import tvsum_top5_map_umt, youtube_video_ap
from avhighlights.evaluation.protocols import PROTOCOLS, BenchProtocol, MetricFormat
from avhighlights.evaluation.tvsum_data import TVSumDataset
from avhighlights.evaluation.youtube_data import YouTubeHighlightsDataset

SOURCE_PREFIX = "src/"
TVSUM_CATEGORIES = ("BK", "BT", "DS", "FM", "GA", "MS", "PK", "PR", "VT", "VU")
YOUTUBE_DOMAINS = ("dog", "gymnastics", "parkour", "skating")


class CrossDataset(Dataset):
    """Target samples under their own ids plus source samples under `src/<id>`."""

    source_cls: ClassVar[type]
    target_cls: ClassVar[type]
    feature_sources = UMT_SOURCES

    def __init__(self, data_root: str | Path, groups: Sequence[str] | None = None):
        super().__init__(data_root)
        self.source = self.source_cls.from_data_root(data_root)
        self.target = self.target_cls.from_data_root(data_root, groups)
        self.label_meta_keys = tuple(self.source.label_meta_keys) + tuple(self.target.label_meta_keys)

    @classmethod
    def from_data_root(cls, data_root: str | Path, groups: Sequence[str] | None = None) -> CrossDataset:
        return cls(data_root, groups)

    def video_ids(self) -> list[str]:
        return self.target.video_ids() + [SOURCE_PREFIX + v for v in self.source.video_ids()]

    def load_sample(self, video_id: str) -> Sample:
        if video_id.startswith(SOURCE_PREFIX):
            s = self.source.sample(video_id[len(SOURCE_PREFIX):])
            return Sample(video_id, s.features, s.step_s, s.labels, s.group, s.meta)
        return self.target.sample(video_id)

    def source_ids(self) -> tuple[str, ...]:
        return tuple(SOURCE_PREFIX + v for v in self.source.video_ids())

    def test_ids(self) -> tuple[str, ...]:
        """Every target video (TVSum) or the union of the per-domain test lists (YouTube)."""
        if isinstance(self.target, YouTubeHighlightsDataset):
            return tuple(v for split in self.target.splits() for v in split.test_ids)
        return tuple(self.target.video_ids())

    def splits(self) -> list[Split]:
        return [Split(f"{self.name}", self.source_ids(), (), self.test_ids(), "all")]


@DATASETS.register("youtube_to_tvsum")
class YouTubeToTVSum(CrossDataset):
    source_cls = YouTubeHighlightsDataset
    target_cls = TVSumDataset
    default_protocol = "xdata_tvsum_top5"


@DATASETS.register("tvsum_to_youtube")
class TVSumToYouTube(CrossDataset):
    source_cls = TVSumDataset
    target_cls = YouTubeHighlightsDataset
    default_protocol = "xdata_youtube"


def group_means(values: Sequence[float], groups: Sequence[str], names: Sequence[str], key: str) -> dict[str, float]:
    """{key: mean over groups, key_<group>: mean over the group's videos} (NaN for an absent group)."""
    values, groups = np.asarray(values, dtype=np.float64), np.asarray(groups)
    per_group = {f"{key}_{g}": float(values[groups == g].mean()) if (groups == g).any() else float("nan")
                 for g in names}
    present = [v for v in per_group.values() if np.isfinite(v)]
    return {key: float(np.mean(present)) if present else float("nan"), **per_group}


@PROTOCOLS.register("xdata_tvsum_top5")
class CrossToTVSumTop5(BenchProtocol):
    dataset = "youtube_to_tvsum"
    metrics = {"top5_map_umt": MetricFormat("top-5 mAP (UMT), mean of categories"),
               **{f"top5_map_umt_{c}": MetricFormat(c) for c in TVSUM_CATEGORIES}}
    notes = ("Unsupervised pretraining on every YouTube Highlights video with features (labels stripped); "
             "test on all 50 TVSum videos; per category the mean UMT top-5 mAP of its 5 videos.")

    def splits(self, dataset: Dataset, seed: int) -> list[Split]:
        return dataset.splits()

    def evaluate(self, samples: Sequence[Sample], preds: Sequence[np.ndarray]) -> dict[str, float]:
        values = [tvsum_top5_map_umt(p, s.meta["annotations"]) for s, p in zip(samples, preds, strict=True)]
        return group_means(values, [s.group for s in samples], TVSUM_CATEGORIES, "top5_map_umt")


@PROTOCOLS.register("xdata_youtube")
class CrossToYouTube(BenchProtocol):
    dataset = "tvsum_to_youtube"
    metrics = {"map": MetricFormat("mAP (YouTube), mean of domains"),
               **{f"map_{d}": MetricFormat(d) for d in YOUTUBE_DOMAINS}}
    notes = ("Unsupervised pretraining on all 50 TVSum videos (labels stripped); test on the UMT test "
             "list of each YouTube domain (videos with features); per domain mAP, then their mean.")

    def splits(self, dataset: Dataset, seed: int) -> list[Split]:
        return dataset.splits()

    def evaluate(self, samples: Sequence[Sample], preds: Sequence[np.ndarray]) -> dict[str, float]:
        values = [youtube_video_ap(p, s.meta["match"]) for s, p in zip(samples, preds, strict=True)]
        return group_means(values, [s.group for s in samples], YOUTUBE_DOMAINS, "map")
