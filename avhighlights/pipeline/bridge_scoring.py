"""Scoring raw video with a checkpoint trained on a dataset's released features, through the bridge extractors
(`extractors/bridges.py`).

Binding: every role whose stored source is a dataset stream (kind "dataset") is fed by the extractor registered as
its bridge; an extractor bound there (by the bridge or by --bind) must declare that it reproduces the source and give
rows of the same width, else CheckpointMismatchError (exit 5) names both. A dataset source without a bridge is
refused the same way.

Time base: the model was trained on the dataset's rows (e.g. one per 2-s clip), so it runs on the bridge extractors'
own rows rather than on the 1-s grid with every row repeated. `score_sample` receives the features aligned onto the
1-s grid; `bridge_predict` aligns them back onto the bridge's rows ([i * hop, (i + 1) * hop), the last one clipped to
the video), which for a hop of a whole number of seconds returns the extractor's rows exactly (each 1-s step holds a
copy of the row covering it), runs the method on those rows and gives every 1-s step the score of the row covering
it (`core.timebase.align`; steps after the last row take its score).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from avhighlights.core.errors import CheckpointMismatchError, ConfigError, WeightsNotFoundError
from avhighlights.core.sample import FeatureSource, Sample
from avhighlights.core.timebase import align, second_grid
from avhighlights.core.types import VideoInfo
from avhighlights.extractors.base import Extractor
from avhighlights.extractors.bridges import bridge_for, reproduced_sources
from avhighlights.models.base import HighlightMethod
from avhighlights.models.checkpoint import CheckpointInfo, describe_binding


def dataset_roles(info: CheckpointInfo) -> dict[str, FeatureSource]:
    return {role: src for role, src in info.binding.items() if src.kind == "dataset"}


def checkpoint_extractor_names(path: str | Path, info: CheckpointInfo) -> dict[str, str]:
    """role -> extractor name for a checkpoint: its own extractors, and the bridge of every dataset source."""
    names = {role: src.name for role, src in info.binding.items()}
    for role, src in dataset_roles(info).items():
        try:
            names[role] = bridge_for(src.name)
        except CheckpointMismatchError as exc:
            dataset = info.model_card.get("dataset", "a benchmark dataset")
            raise CheckpointMismatchError(
                f"{path}: trained on the feature files of {dataset} ({describe_binding(dataset_roles(info))}); role "
                f"{role!r}: {exc}, so it cannot score a video; evaluate it with `avhighlights bench --checkpoint`, "
                "or train on extractor features") from None
    return names


def bridged_binding(path: str | Path, info: CheckpointInfo,
                    extractors: Mapping[str, Extractor]) -> dict[str, FeatureSource]:
    """The binding to check the checkpoint against: a bridged role counts as its stored dataset source once its
    extractor is shown to reproduce it at the same width; other roles are their extractors' sources."""
    binding = {role: FeatureSource(ex.name, ex.version, "extractor", ex.dim) for role, ex in extractors.items()}
    for role, src in dataset_roles(info).items():
        ex = extractors.get(role)
        if ex is None:
            continue  # check_binding names the missing role
        if src.name not in reproduced_sources(ex.name):
            raise CheckpointMismatchError(
                f"{path}: role {role!r} was trained on dataset source {src.name}, which extractor {ex.name} does not "
                f"reproduce (its bridge is {bridge_for(src.name)})")
        if src.dim and ex.dim != src.dim:
            raise CheckpointMismatchError(f"{path}: role {role!r} was trained on {src.dim}-d {src.name} rows, but its "
                                          f"bridge extractor {ex.name} gives {ex.dim}-d rows")
        binding[role] = src
    require_weights([extractors[role] for role in dataset_roles(info) if role in extractors])
    return binding


def require_weights(extractors: Sequence[Extractor]) -> None:
    """WeightsNotFoundError (exit 4) naming every missing weights file of `extractors`, before any output is
    written (a bridge needs several files: I3D RGB and flow, RAFT, PANNs)."""
    missing = []
    for extractor in extractors:
        try:
            extractor.identity()  # resolves (and hashes) every file the output depends on
        except WeightsNotFoundError as exc:
            missing.append(exc)
    if missing:
        raise WeightsNotFoundError.of_many(missing)


def bridge_hop_s(info: CheckpointInfo, extractors: Mapping[str, Extractor]) -> float | None:
    """The row step of the bridged roles (None when no role is bridged); their extractors must share it."""
    hops = {float(extractors[role].hop_s) for role in dataset_roles(info) if role in extractors}
    if len(hops) > 1:
        raise ConfigError(f"the bridge extractors of this checkpoint have different row steps {sorted(hops)} s")
    return hops.pop() if hops else None


def bridge_predict(method: HighlightMethod, sample: Sample, info: VideoInfo, hop_s: float | None) -> np.ndarray:
    """Scores on the sample's 1-s grid: the method run on the bridge's rows when `hop_s` is set and not 1 s."""
    if hop_s is None or abs(hop_s - sample.step_s) < 1e-9:
        return np.asarray(method.predict(sample), dtype=np.float64)
    grid, rows = second_grid(info.duration_s, sample.step_s), second_grid(info.duration_s, hop_s)
    features = {role: align(values, grid, rows).astype(np.float32) for role, values in sample.features.items()}
    meta = {**sample.meta, "n_steps": len(rows)}
    row_sample = Sample(sample.video_id, features, hop_s, group=sample.group, meta=meta)
    row_scores = np.asarray(method.predict(row_sample), dtype=np.float64)  # (rows,)
    return align(row_scores, rows, grid)
