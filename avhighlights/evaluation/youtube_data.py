"""YouTube Highlights with the UMT-released features: one row per annotated 100-frame clip
(50-frame stride); label = match > 0; splits per domain restricted to videos with features."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from avhighlights.core.sample import Sample
from avhighlights.evaluation.datasets import (
    DATASETS,
    Split,
    UMTDataset,
    read_json,
    trim_features,
)


@DATASETS.register("youtube_highlights")
class YouTubeHighlightsDataset(UMTDataset):
    """Videos of the domains present (or the `groups` asked for) that have a feature file.

    `meta` holds `start_s` / `end_s` of every clip (frame windows / fps), the raw `match` values
    and `fps`; `step_s` is the clip stride in seconds.
    """

    subdir = "youtube_highlights"
    default_protocol = "per_domain"
    label_meta_keys = ("match",)

    def __init__(self, root: str | Path, groups: Sequence[str] | None = None,
                 sources: Mapping[str, str] | None = None):
        super().__init__(root, sources)
        self.anno = read_json(self.root / "youtube_anno.json")
        self.split_lists = read_json(self.root / "splits.json")
        self.groups = tuple(groups) if groups else None
        self._with_features = {p.stem for p in (self.root / "features").glob("*.npz")}

    @classmethod
    def from_data_root(cls, data_root: str | Path, groups: Sequence[str] | None = None,
                       sources: Mapping[str, str] | None = None) -> YouTubeHighlightsDataset:
        return cls(Path(data_root) / cls.subdir, groups, sources)

    def video_ids(self) -> list[str]:
        return sorted(v for v, a in self.anno.items()
                      if v in self._with_features and (self.groups is None or a["domain"] in self.groups))

    def load_sample(self, video_id: str) -> Sample:
        info = self.anno[video_id]
        fps = float(info["fps"])
        features = self.umt_features(self.root / "features" / f"{video_id}.npz")
        windows = np.asarray(info["clip"], dtype=np.float64).reshape(-1, 2)  # (clips, 2) frames
        match = np.asarray(info["match"], dtype=np.float32)
        n = min(len(features["visual"]), len(windows), len(match))
        stride_frames = float(windows[1, 0] - windows[0, 0]) if n > 1 else float(windows[0, 1] - windows[0, 0])
        meta = {"start_s": windows[:n, 0] / fps, "end_s": windows[:n, 1] / fps, "match": match[:n],
                "fps": fps, "n_steps": n}
        return Sample(video_id, trim_features(features, n), stride_frames / fps,
                      (match[:n] > 0).astype(np.float32), info["domain"], meta)

    def splits(self) -> list[Split]:
        """Per domain: the UMT train list and val (= test) list, restricted to usable videos."""
        usable = set(self.video_ids())
        splits = []
        for domain in sorted(self.split_lists):
            if self.groups is not None and domain not in self.groups:
                continue
            lists = self.split_lists[domain]
            train = tuple(v for v in lists["train"] if v in usable)
            test = tuple(v for v in lists["val"] if v in usable)
            splits.append(Split(domain, train, test, test, domain))
        return splits

    def unavailable_ids(self) -> dict[str, list[str]]:
        """Split-listed videos without features, per domain (recorded in bench results)."""
        usable = set(self.video_ids())
        return {d: sorted(v for part in lists.values() for v in part if v not in usable)
                for d, lists in self.split_lists.items() if self.groups is None or d in self.groups}
