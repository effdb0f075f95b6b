"""Mr.HiSum: the official `mr_hisum.h5` (per video `features` (n, 1024) at 1 fps, `gtscore`,
`change_points`, `gt_summary`), `metadata.csv` and `mr_hisum_split.json`. The h5 is a separate
user download; the shared data holds only the metadata and the split."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from avhighlights.core.errors import DatasetError
from avhighlights.core.sample import FeatureSource, Sample
from avhighlights.evaluation.datasets import DATASETS, Dataset, Split, read_json, require_file

H5_KEYS = ("features", "gtscore", "change_points", "gt_summary")


def read_metadata(path: Path) -> dict[str, dict[str, str]]:
    """metadata.csv rows keyed by `video_id`."""
    with open(require_file(path), newline="") as handle:
        rows = list(csv.DictReader(handle))
    if rows and "video_id" not in rows[0]:
        raise DatasetError(f"{path}: no video_id column")
    return {row["video_id"]: row for row in rows}


@DATASETS.register("mrhisum")
class MrHiSumDataset(Dataset):
    """Samples at 1 fps: role "visual" = YouTube-8M features, labels = gtscore; `meta` holds
    `change_points` (shots, 2) inclusive rows, `gt_summary` and the `youtube_id`."""

    subdir = "mrhisum"
    default_protocol = "mrhisum_official"
    feature_sources = {"visual": FeatureSource("yt8m_rgb_dequantised", "mrhisum-release", "dataset", 1024)}
    label_meta_keys = ("gt_summary",)

    def __init__(self, root: str | Path, groups: Sequence[str] | None = None, h5_path: str | Path | None = None):
        super().__init__(root)
        self.metadata = read_metadata(self.root / "metadata.csv")
        self.split_keys = read_json(self.root / "mr_hisum_split.json")
        self.h5_path = require_file(Path(h5_path) if h5_path else self.root / "mr_hisum.h5")
        self._ids = self._read_ids()

    @classmethod
    def from_data_root(cls, data_root: str | Path, groups: Sequence[str] | None = None) -> MrHiSumDataset:
        return cls(Path(data_root) / cls.subdir, groups)

    def _read_ids(self) -> list[str]:
        import h5py

        try:
            with h5py.File(self.h5_path, "r") as h5:
                return sorted(k for k in h5.keys() if k in self.metadata)
        except OSError as exc:
            raise DatasetError(f"{self.h5_path}: not a readable HDF5 file ({exc})") from None

    def video_ids(self) -> list[str]:
        return list(self._ids)

    def load_sample(self, video_id: str) -> Sample:
        import h5py

        with h5py.File(self.h5_path, "r") as h5:
            group = h5[video_id]
            missing = [k for k in H5_KEYS if k not in group]
            if missing:
                raise DatasetError(f"{self.h5_path}: video {video_id} lacks {missing}")
            features, gtscore, cps, summary = (np.asarray(group[k]) for k in H5_KEYS)
        n = min(len(features), len(gtscore))
        meta = {"change_points": cps.astype(np.int64).reshape(-1, 2), "gt_summary": summary.astype(np.int8),
                "youtube_id": self.metadata[video_id].get("youtube_id", ""), "n_steps": n}
        return Sample(video_id, {"visual": features[:n].astype(np.float32)}, 1.0,
                      gtscore[:n].astype(np.float32), None, meta)

    def splits(self) -> list[Split]:
        """The official split, with videos absent from the h5 dropped."""
        have = set(self._ids)
        train, val, test = (tuple(k for k in self.split_keys[f"{part}_keys"] if k in have)
                            for part in ("train", "val", "test"))
        return [Split("official", train, val, test, "all")]
