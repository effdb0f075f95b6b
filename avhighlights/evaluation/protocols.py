"""Benchmark protocols: which splits a dataset is cut into for a seed, and which metrics a split's
test predictions get. Registered by name in `PROTOCOLS`; `dataset` names the dataset each fits."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from avhighlights.core.registry import Registry
from avhighlights.core.sample import Sample
from avhighlights.evaluation.datasets import Dataset, Split
from avhighlights.evaluation.highlight_metrics import (
    clip_to_frame_scores,
    tvsum_dataset_map,
    tvsum_top5_map_mininet,
    tvsum_top5_map_umt,
    youtube_map,
)
from avhighlights.evaluation.metrics import (
    davihd_video_metrics,
    kendall_tau_b,
    map_rho,
    spearman_rho,
)
from avhighlights.evaluation.mrhisum import f1_knapsack15

PROTOCOLS: Registry[BenchProtocol] = Registry("protocol")


@dataclass(frozen=True)
class MetricFormat:
    """How a metric is shown: its label (with the protocol variant), scale and decimals."""

    label: str
    scale: float = 100.0
    decimals: int = 2


PERCENT_DAVIHD = {
    "f1_top50": MetricFormat("F1 top-50 % (DAViHD)"),
    "map50": MetricFormat("mAP@50 (DAViHD, 5-s blocks)"),
    "map15": MetricFormat("mAP@15 (DAViHD, 5-s blocks)"),
    "rho": MetricFormat("Spearman rho (1 fps)", 1.0, 3),
    "tau": MetricFormat("Kendall tau-b (1 fps)", 1.0, 3),
}


class BenchProtocol(ABC):
    """`splits(dataset, seed)` and `evaluate(test samples, predictions) -> {metric: value}`."""

    name: ClassVar[str]
    dataset: ClassVar[str]
    metrics: ClassVar[dict[str, MetricFormat]]
    std_over: ClassVar[str] = "seeds"  # or "folds": std over every (seed, fold)
    notes: ClassVar[str] = ""

    @abstractmethod
    def splits(self, dataset: Dataset, seed: int) -> list[Split]:
        """The splits evaluated for `seed`."""

    @abstractmethod
    def evaluate(self, samples: Sequence[Sample], preds: Sequence[np.ndarray]) -> dict[str, float]:
        """Metric values (fractions) over one split's test videos."""


def nanmean_metrics(rows: Sequence[dict[str, float]], names: Sequence[str]) -> dict[str, float]:
    """Per-metric mean over videos, ignoring the NaN of skipped videos (NaN if all were skipped)."""
    out = {}
    for name in names:
        values = np.array([row[name] for row in rows], dtype=np.float64)
        out[name] = float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")
    return out


@PROTOCOLS.register("umt_top5")
class TVSumUMTTop5(BenchProtocol):
    dataset = "tvsum"
    metrics = {"top5_map_umt": MetricFormat("top-5 mAP (UMT)"),
               "top5_map_mininet": MetricFormat("top-5 mAP (MINI-Net shots)")}
    notes = ("QD-DETR split: per category 4 train / 1 test video, one model per category; the test "
             "video is also the validation video (as in UMT), so any checkpoint selection used the test split.")

    def splits(self, dataset: Dataset, seed: int) -> list[Split]:
        return dataset.splits()

    def evaluate(self, samples: Sequence[Sample], preds: Sequence[np.ndarray]) -> dict[str, float]:
        umt = [tvsum_top5_map_umt(p, s.meta["annotations"]) for s, p in zip(samples, preds, strict=True)]
        mininet = [self._mininet(s, p) for s, p in zip(samples, preds, strict=True)]
        return {"top5_map_umt": tvsum_dataset_map(umt), "top5_map_mininet": float(np.mean(mininet))}

    @staticmethod
    def _mininet(sample: Sample, pred: np.ndarray) -> float:
        frames = sample.meta["frame_annotations"]
        frame_pred = clip_to_frame_scores(pred, len(frames), sample.meta["fps"], sample.step_s)
        return tvsum_top5_map_mininet(frame_pred, frames, sample.meta["fps"])


@PROTOCOLS.register("davihd_5fold")
class TVSumDAViHD5Fold(BenchProtocol):
    dataset = "tvsum"
    metrics = {**PERCENT_DAVIHD, "rho_clip": MetricFormat("Spearman rho (2-s clips)", 1.0, 3),
               "tau_clip": MetricFormat("Kendall tau-b (2-s clips)", 1.0, 3)}
    std_over = "folds"
    notes = ("DAViHD 5-fold CV over the 50 sorted ids (KFold shuffled by the run seed); clip scores and "
             "clip labels (annotator mean - 1) / 4 are repeated to 1-fps steps. The held-out fold is used "
             "both as validation and as test (optimistic). Mean +- std over all seeds x folds. Indicative, "
             "not comparable with DAViHD Table 1 (clip-majority labels, UMT features).")
    repeat = 2  # 2-s clips -> 1-s steps

    def splits(self, dataset: Dataset, seed: int) -> list[Split]:
        return dataset.kfold_splits(seed)

    def evaluate(self, samples: Sequence[Sample], preds: Sequence[np.ndarray]) -> dict[str, float]:
        rows = [self._video(s, p) for s, p in zip(samples, preds, strict=True)]
        return nanmean_metrics(rows, list(self.metrics))

    def _video(self, sample: Sample, pred: np.ndarray) -> dict[str, float]:
        row = davihd_video_metrics(np.repeat(pred, self.repeat), np.repeat(sample.labels, self.repeat))
        return {**row, "rho_clip": spearman_rho(pred, sample.labels), "tau_clip": kendall_tau_b(pred, sample.labels)}


@PROTOCOLS.register("per_domain")
class YouTubePerDomain(BenchProtocol):
    dataset = "youtube_highlights"
    metrics = {"map": MetricFormat("mAP (YouTube, AP-trap all clips)")}
    notes = ("UMT split per domain restricted to videos with features; one model per domain; the "
             "'val' list is the test list (and the validation list, as in UMT).")

    def splits(self, dataset: Dataset, seed: int) -> list[Split]:
        return dataset.splits()

    def evaluate(self, samples: Sequence[Sample], preds: Sequence[np.ndarray]) -> dict[str, float]:
        return {"map": youtube_map(list(preds), [s.meta["match"] for s in samples])}


@PROTOCOLS.register("mrhisum_official")
class MrHiSumOfficial(BenchProtocol):
    dataset = "mrhisum"
    metrics = {"f1_knapsack15": MetricFormat("F1 knapsack-15 % (Mr.HiSum)"),
               "map50": MetricFormat("mAP@50 (Mr.HiSum official)"),
               "map15": MetricFormat("mAP@15 (Mr.HiSum official)")}
    notes = "Official Mr.HiSum split and metrics; videos where k = floor(0.15 N_seg) = 0 are skipped for mAP@15."

    def splits(self, dataset: Dataset, seed: int) -> list[Split]:
        return dataset.splits()

    def evaluate(self, samples: Sequence[Sample], preds: Sequence[np.ndarray]) -> dict[str, float]:
        rows = [{"f1_knapsack15": f1_knapsack15(p, s.meta["change_points"], s.meta["gt_summary"]),
                 "map50": map_rho(p, s.labels, 0.5, guard=False),
                 "map15": map_rho(p, s.labels, 0.15, guard=False)} for s, p in zip(samples, preds, strict=True)]
        return nanmean_metrics(rows, list(self.metrics))


@PROTOCOLS.register("folder_1fps")
class Folder1fps(BenchProtocol):
    dataset = "folder"
    metrics = PERCENT_DAVIHD
    notes = "A labelled folder on the 1-s grid, scored with the DAViHD per-video metrics."

    def splits(self, dataset: Dataset, seed: int) -> list[Split]:
        return dataset.splits()

    def evaluate(self, samples: Sequence[Sample], preds: Sequence[np.ndarray]) -> dict[str, float]:
        rows = [davihd_video_metrics(p, s.labels) for s, p in zip(samples, preds, strict=True)]
        return nanmean_metrics(rows, list(self.metrics))
