"""The `general` dataset: TVSum and the four YouTube Highlights domains together (the UMT-release features of
both), for models meant for any content (the zoo's general models, leave-one-domain-out), and its protocol.

Groups are the TVSum categories (BK ... VU) and the YouTube domains (dog, gymnastics, parkour, skating);
`--domains` / `groups` picks any of them (e.g. every group but one for leave-one-domain-out). The splits are
those of the parts (TVSum: QD-DETR per category; YouTube: the UMT lists per domain), so a video on any test list
is never trained on by `train`. Video ids are the parts' own ids (they do not collide).

Labels, as each part gives them: TVSum the annotator mean rescaled to [0, 1] (soft), YouTube `match > 0` (binary).
Joint-VA (`label_mode` binary_top50) and HPCL binarise a video's soft labels to its top 50 % of steps and keep
binary ones as they are, so both parts reach the losses as binary per-step targets.

Protocol `general`: per split, TVSum videos get the UMT top-5 mAP (`top5_map_umt`) and YouTube videos the
per-domain mAP (`map`), each NaN where the split has none of its videos; the mean over groups of each metric
is then TVSum's mean over categories and YouTube's mean over domains, the numbers of `umt_top5` and
`per_domain`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from avhighlights.core.errors import ConfigError
from avhighlights.core.sample import Sample
from avhighlights.evaluation.datasets import DATASETS, Split, UMTDataset
from avhighlights.evaluation.highlight_metrics import tvsum_dataset_map, tvsum_top5_map_umt, youtube_map
from avhighlights.evaluation.protocols import PROTOCOLS, BenchProtocol, MetricFormat
from avhighlights.evaluation.tvsum_data import TVSumDataset
from avhighlights.evaluation.youtube_data import YouTubeHighlightsDataset

PART_CLASSES: tuple[type[UMTDataset], ...] = (TVSumDataset, YouTubeHighlightsDataset)


def split_groups(ds) -> list[str]:
    """The groups (categories / domains) of a dataset's standard splits, sorted."""
    return sorted({split.group for split in ds.splits() if split.group})


@DATASETS.register("general")
class GeneralDataset(UMTDataset):
    """TVSum + YouTube Highlights (see the module docstring); `parts` are the two datasets restricted to `groups`."""

    default_protocol = "general"

    def __init__(self, data_root: str | Path, groups: Sequence[str] | None = None,
                 sources: Mapping[str, str] | None = None):
        super().__init__(data_root, sources)
        full = [cls.from_data_root(data_root, None, sources) for cls in PART_CLASSES]
        known = {cls.name: split_groups(part) for cls, part in zip(PART_CLASSES, full, strict=True)}
        wanted = set(groups) if groups else None
        unknown = sorted(wanted - {g for names in known.values() for g in names}) if wanted else []
        if unknown:
            raise ConfigError(f"general: unknown domains {unknown}; groups: "
                              + "; ".join(f"{name} {' '.join(names)}" for name, names in known.items()))
        self.parts = [part if wanted is None else cls.from_data_root(data_root, sorted(wanted & set(names)), sources)
                      for cls, part, names in zip(PART_CLASSES, full, known.values(), strict=True)
                      if wanted is None or wanted & set(names)]
        self.label_meta_keys = tuple(k for part in self.parts for k in part.label_meta_keys)
        self._owner = {v: part for part in self.parts for v in part.video_ids()}

    @classmethod
    def from_data_root(cls, data_root: str | Path, groups: Sequence[str] | None = None,
                       sources: Mapping[str, str] | None = None) -> GeneralDataset:
        return cls(data_root, groups, sources)

    def video_ids(self) -> list[str]:
        return sorted(self._owner)

    def load_sample(self, video_id: str) -> Sample:
        return self._owner[video_id].sample(video_id)

    def splits(self) -> list[Split]:
        return [split for part in self.parts for split in part.splits()]


@PROTOCOLS.register("general")
class GeneralProtocol(BenchProtocol):
    dataset = "general"
    metrics = {"top5_map_umt": MetricFormat("TVSum top-5 mAP (UMT)"), "map": MetricFormat("YouTube mAP")}
    notes = ("TVSum + YouTube Highlights: the parts' standard splits (TVSum QD-DETR per category, YouTube UMT lists "
             "per domain); TVSum videos get the UMT top-5 mAP, YouTube videos the per-domain mAP; each overall "
             "number is the mean over the groups that have it (TVSum categories, YouTube domains).")

    def splits(self, dataset, seed: int) -> list[Split]:
        return dataset.splits()

    def evaluate(self, samples: Sequence[Sample], preds: Sequence[np.ndarray]) -> dict[str, float]:
        tvsum = [(s, p) for s, p in zip(samples, preds, strict=True) if "annotations" in s.meta]
        youtube = [(s, p) for s, p in zip(samples, preds, strict=True) if "match" in s.meta]
        return {"top5_map_umt": tvsum_dataset_map([tvsum_top5_map_umt(p, s.meta["annotations"]) for s, p in tvsum])
                if tvsum else float("nan"),
                "map": youtube_map([p for _, p in youtube], [s.meta["match"] for s, _ in youtube])
                if youtube else float("nan")}
