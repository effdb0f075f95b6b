"""TVSum with the UMT-released features (2-s clips): clip annotations for the top-5 mAP, the raw
per-frame TSV for the MINI-Net variant and 1-fps ground truth, QD-DETR and 5-fold splits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from sklearn.model_selection import KFold

from avhighlights.core.errors import DatasetError
from avhighlights.core.sample import Sample
from avhighlights.evaluation.datasets import (
    DATASETS,
    Split,
    UMTDataset,
    read_json,
    read_jsonl,
    require_file,
    trim_features,
)

CLIP_S = 2.0
N_FOLDS = 5


def load_tvsum_frame_annotations(path: str | Path) -> dict[str, np.ndarray]:
    """The original `ydata-tvsum50-anno.tsv`: video id -> (frames, annotators) int8 scores 1..5."""
    path = require_file(Path(path))
    rows: dict[str, list[np.ndarray]] = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        parts = line.split("\t")
        if len(parts) != 3:
            raise DatasetError(f"{path}: line {number} has {len(parts)} tab-separated fields, expected 3")
        rows.setdefault(parts[0], []).append(np.array(parts[2].split(","), dtype=np.int8))
    return {vid: np.stack(cols, axis=1) for vid, cols in rows.items()}


def length_to_seconds(length: str) -> int:
    """'m:ss' (or 'h:mm:ss') -> whole seconds."""
    seconds = 0
    for part in str(length).split(":"):
        seconds = 60 * seconds + int(part)
    return seconds


def tvsum_1fps_ground_truth(frame_annotations: np.ndarray, length_s: int) -> np.ndarray:
    """DAViHD's TVSum labels: per-frame annotator mean m -> (m - 1) / 4, linearly interpolated at
    t = 0..L-1 with frame j of N placed at j * (L - 1) / (N - 1)."""
    frame_gt = (frame_annotations.mean(axis=1) - 1.0) / 4.0  # (N,)
    n = len(frame_gt)
    positions = np.arange(n) * (length_s - 1) / max(n - 1, 1)
    return np.interp(np.arange(length_s, dtype=np.float64), positions, frame_gt)


def kfold_splits(video_ids: Sequence[str], seed: int, n_folds: int = N_FOLDS) -> list[Split]:
    """scikit-learn KFold(shuffle, seed) over the sorted ids; the held-out fold is val AND test."""
    ids = sorted(video_ids)
    folds = KFold(n_splits=n_folds, shuffle=True, random_state=seed).split(ids)
    splits = []
    for k, (train, test) in enumerate(folds):
        held_out = tuple(ids[i] for i in test)
        splits.append(Split(f"fold{k}", tuple(ids[i] for i in train), held_out, held_out, f"fold{k}"))
    return splits


@DATASETS.register("tvsum")
class TVSumDataset(UMTDataset):
    """50 videos in 10 categories; one sample per video on 2-s clips.

    `labels` = (annotator mean - 1) / 4; `meta["annotations"]` = (clips, 20) clip scores,
    `meta["frame_annotations"]` = (frames, 20) raw scores, plus fps, frames, length_s.
    """

    subdir = "tvsum"
    default_protocol = "umt_top5"
    label_meta_keys = ("annotations", "frame_annotations")

    def __init__(self, root: str | Path, groups: Sequence[str] | None = None,
                 sources: Mapping[str, str] | None = None):
        super().__init__(root, sources)
        self.anno = read_json(self.root / "tvsum_anno.json")
        self.groups = tuple(groups) if groups else None
        self._frame_annotations: dict[str, np.ndarray] | None = None

    @classmethod
    def from_data_root(cls, data_root: str | Path, groups: Sequence[str] | None = None,
                       sources: Mapping[str, str] | None = None) -> TVSumDataset:
        return cls(Path(data_root) / cls.subdir, groups, sources)

    def video_ids(self) -> list[str]:
        return sorted(v for v, a in self.anno.items() if self.groups is None or a["domain"] in self.groups)

    def frame_annotations(self, video_id: str) -> np.ndarray:
        if self._frame_annotations is None:
            self._frame_annotations = load_tvsum_frame_annotations(self.root / "ydata-tvsum50-anno.tsv")
        if video_id not in self._frame_annotations:
            raise DatasetError(f"{self.root / 'ydata-tvsum50-anno.tsv'}: no rows for video {video_id}")
        return self._frame_annotations[video_id]

    def load_sample(self, video_id: str) -> Sample:
        info = self.anno[video_id]
        features = self.umt_features(self.root / "features" / f"{video_id}.npz")
        clip_scores = np.asarray(info["anno"], dtype=np.float32)  # (clips, 20)
        n = min(len(features["visual"]), len(clip_scores))
        meta = {"annotations": clip_scores[:n], "frame_annotations": self.frame_annotations(video_id),
                "fps": float(info["fps"]), "n_frames": int(info["frames"]),
                "length_s": length_to_seconds(info["length"]), "n_steps": n}
        labels = (clip_scores[:n].mean(axis=1) - 1.0) / 4.0
        return Sample(video_id, trim_features(features, n), CLIP_S, labels.astype(np.float32),
                      info["domain"], meta)

    def splits(self) -> list[Split]:
        """QD-DETR: per category 4 training videos and 1 test video (the test video is also the
        validation video, as in UMT/QD-DETR)."""
        train = read_jsonl(self.root / "tvsum_train_qddetr.jsonl")
        test = read_jsonl(self.root / "tvsum_val_qddetr.jsonl")
        wanted = set(self.video_ids())
        splits = []
        for group in sorted({self.anno[r["vid"]]["domain"] for r in train + test} & self._groups()):
            tr = tuple(sorted(r["vid"] for r in train if self.anno[r["vid"]]["domain"] == group and r["vid"] in wanted))
            te = tuple(sorted(r["vid"] for r in test if self.anno[r["vid"]]["domain"] == group and r["vid"] in wanted))
            splits.append(Split(group, tr, te, te, group))
        return splits

    def kfold_splits(self, seed: int, n_folds: int = N_FOLDS) -> list[Split]:
        return kfold_splits(self.video_ids(), seed, n_folds)

    def _groups(self) -> set[str]:
        return {self.anno[v]["domain"] for v in self.video_ids()}
