"""Fit an unsupervised method on the user's own videos: probe -> cached features -> 1-s grid
samples -> `method.fit` -> a self-describing checkpoint (see models/checkpoint.py).

Only methods with `trainable = True` and `supervised = False` (recurrence, rasl) can be fitted on
unlabelled videos; supervised methods need labels and are trained with `avhighlights train` (or `bench`).

Roles are bound to extractors by the method's `default_binding`, changed per role with
`binding_overrides` ({role: extractor name}), e.g. a CPU-only set-up without the default weights.

Samples live on the 1-s grid (one step per second). Methods whose defaults assume another step
declare `one_second_grid_defaults` (models/base.py), applied unless the user sets the key: RASL's window of
150 steps is 30 s at the paper's 5 fps, so on the 1-s grid its window is 30 steps (its default of
150 applies to features sampled at 5 fps, e.g. in `bench` on such features).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from avhighlights.core.errors import ConfigError
from avhighlights.core.files import find_videos
from avhighlights.core.progress import ProgressFn
from avhighlights.core.registry import config_to_dict
from avhighlights.core.sample import FeatureSource, Sample
from avhighlights.core.types import VideoInfo
from avhighlights.extractors.base import Extractor
from avhighlights.extractors.store import FeatureStore
from avhighlights.models.base import METHODS, HighlightMethod, collapsed_fraction, create_method
from avhighlights.models.checkpoint import save_checkpoint
from avhighlights.pipeline.binding import build_extractors, extractor_sources, resolve_binding
from avhighlights.pipeline.extract import ExtractionStats
from avhighlights.pipeline.featurize import featurize, open_store
from avhighlights.pipeline.output_dir import prepare_output_dir, writing_to
from avhighlights.pipeline.probe import probe_all
from avhighlights.pipeline.progress import for_video, null_progress, report_count

GRID_STEP_S = 1.0


@dataclass
class FitReport:
    """What a fit used and produced."""

    checkpoint: Path
    method: str
    config: dict[str, Any]
    binding: dict[str, FeatureSource]
    videos: list[Path]
    video_sha256: list[str]
    seed: int
    n_steps: int
    seconds: float
    training: dict[str, Any] = field(default_factory=dict)
    extraction: ExtractionStats = field(default_factory=ExtractionStats)
    near_constant_fraction: float = 0.0  # training videos whose fitted scores are near-constant (a collapse)


def fittable_method(name: str) -> type[HighlightMethod]:
    """The registered class, or a ConfigError when it cannot be fitted without labels."""
    cls = METHODS.get(name)
    if not cls.trainable:
        raise ConfigError(f"method {name!r} is a reference method and needs no fit; score with it directly")
    if cls.supervised:
        raise ConfigError(f"method {name!r} is supervised and needs labelled videos: train it with "
                          f"`avhighlights train` (or `avhighlights bench --save-checkpoints`) on a labelled dataset; "
                          f"`fit` takes unsupervised methods "
                          f"({', '.join(unsupervised_methods())})")
    return cls


def unsupervised_methods() -> list[str]:
    """Registered methods `fit` can train (every method is imported)."""
    return [name for name, cls in METHODS.load_all().items() if cls.trainable and not cls.supervised]


def grid_overrides(name: str, overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """The user's method overrides on top of the method's 1-s grid defaults."""
    return {**METHODS.get(name).one_second_grid_defaults, **dict(overrides or {})}


def load_samples(infos: Sequence[VideoInfo], extractors: Mapping[str, Extractor], store: FeatureStore | None = None,
                 progress: ProgressFn | None = None, stats: ExtractionStats | None = None) -> list[Sample]:
    """One 1-s grid Sample per video (`featurize`), features through the store."""
    progress = progress or null_progress
    samples = []
    for i, info in enumerate(infos):
        with for_video(progress, info.path):
            samples.append(featurize(extractors, info, store, stats=stats, progress=progress))
        report_count(progress, "fit:features", i + 1, len(infos), "videos")
    return samples


def fit_on_videos(videos: Sequence[str | Path], method: str, out_checkpoint: str | Path,
                  binding_overrides: Mapping[str, str] | None = None,
                  method_overrides: Mapping[str, Any] | None = None,
                  extractor_overrides: Mapping[str, Mapping[str, Any]] | None = None,
                  store: str | None = "default", seed: int = 0, progress: ProgressFn | None = None,
                  device: str | None = None) -> FitReport:
    """Fit unsupervised `method` on `videos` (files or folders) and write `out_checkpoint` atomically.

    Every input is probed first: a bad file raises a MediaError naming it before any feature is
    computed or anything is written. `store` is as in `pipeline.featurize.open_store`.
    """
    cls = fittable_method(method)
    binding = resolve_binding(cls.default_binding, binding_overrides)
    infos = list({i.sha256: i for i in probe_all(find_videos(videos), progress, 'probe videos')}.values())  # unique
    prepare_output_dir(Path(out_checkpoint).parent)  # fail now, not after the fit
    extractors = build_extractors(binding, extractor_overrides, device)
    return fit_infos(infos, method, extractors, out_checkpoint, method_overrides, open_store(store), seed, progress,
                     device=device)


def fit_infos(infos: Sequence[VideoInfo], method: str, extractors: Mapping[str, Extractor],
              out_checkpoint: str | Path, method_overrides: Mapping[str, Any] | None = None,
              store: FeatureStore | None = None, seed: int = 0, progress: ProgressFn | None = None,
              training_extra: Mapping[str, Any] | None = None, device: str | None = None) -> FitReport:
    """The work of `fit_on_videos` for probed videos and built extractors; `store` is an open
    FeatureStore or None; `device` (None: the method's own choice) is where a torch method trains."""
    progress = progress or null_progress
    t0 = time.monotonic()
    stats = ExtractionStats()
    model = create_method(method, {r: ex.dim for r, ex in extractors.items()}, grid_overrides(method, method_overrides))
    model.to_device(device)
    samples = load_samples(infos, extractors, store, progress, stats)
    report = model.fit(samples, seed=seed, progress=lambda _stage, f: progress("fit:train", f))  # one bar
    binding = extractor_sources(extractors)
    near_constant = collapsed_fraction([model.predict(s) for s in samples])
    training = {"fit": report, "seed": seed, "step_s": GRID_STEP_S, "videos": [str(i.path) for i in infos],
                "video_sha256": [i.sha256 for i in infos], "near_constant_fraction": near_constant,
                **dict(training_extra or {})}
    with writing_to(Path(out_checkpoint).parent):
        path = save_checkpoint(model, out_checkpoint, binding, training)
    return FitReport(path, method, config_to_dict(model.config), binding, [i.path for i in infos],
                     [i.sha256 for i in infos], seed, sum(s.n_steps for s in samples), time.monotonic() - t0,
                     report, stats, near_constant)
