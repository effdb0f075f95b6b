"""Scoring one video end to end: probe -> features per extractor (cached) -> aligned features on
the 1-s grid -> scores per second. Selection and rendering follow in `pipeline/run.py`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from avhighlights.core.errors import ConfigError
from avhighlights.core.progress import ProgressFn
from avhighlights.core.sample import FeatureSource, Sample
from avhighlights.core.timebase import FeatureTrack, align_track, second_grid
from avhighlights.core.types import ScoreCurve, VideoInfo
from avhighlights.extractors.base import EXTRACTORS, Extractor, create_extractor
from avhighlights.models.base import METHODS, HighlightMethod, create_method
from avhighlights.models.checkpoint import load_checkpoint, read_checkpoint_info
from avhighlights.pipeline.bridge_scoring import (
    bridge_hop_s,
    bridge_predict,
    bridged_binding,
    checkpoint_extractor_names,
)


@dataclass(frozen=True)
class ScorerSpec:
    """Which method scores a video: a registered name, or a checkpoint that names its own method."""

    method: str = "loudness"
    checkpoint: str | None = None
    method_overrides: Mapping[str, Any] | None = None
    extractor_overrides: Mapping[str, Mapping[str, Any]] | None = None  # extractor name -> config overrides
    device: str | None = None
    binding_overrides: Mapping[str, str] | None = None  # role -> extractor name (a checkpoint must agree)
    auto_fit: Any = None  # a pipeline.fit_cache.AutoFit: fit an unsupervised method on the fly (no checkpoint)


@dataclass
class PreparedScorer:
    """A ready method plus the extractors that feed its roles."""

    method: HighlightMethod
    extractors: dict[str, Extractor]  # role -> extractor
    checkpoint: str | None
    fit: Any = None  # pipeline.fit_cache.FitUse when the method was fitted (or a cached fit reused) on the fly
    bridge_hop_s: float | None = None  # row step of the bridge extractors of a dataset-trained checkpoint


def extractor_sources(extractors: Mapping[str, Extractor]) -> dict[str, FeatureSource]:
    """The binding a set of role -> extractor objects provides (name, version, dim and full identity)."""
    return {role: ex.feature_source() for role, ex in extractors.items()}


def build_extractors(binding: Mapping[str, str], extractor_overrides: Mapping[str, Mapping[str, Any]] | None = None,
                     device: str | None = None) -> dict[str, Extractor]:
    """role -> extractor; `extractor_overrides` maps an extractor name to config overrides."""
    overrides = extractor_overrides or {}
    return {role: create_extractor(name, overrides.get(name), device) for role, name in binding.items()}


def resolve_binding(base: Mapping[str, str], overrides: Mapping[str, str] | None) -> dict[str, str]:
    """`base` (role -> extractor) with `overrides` applied; unknown roles or extractors -> ConfigError."""
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(base))
    if unknown:
        raise ConfigError(f"--bind: unknown role(s) {unknown}; this method reads {sorted(base)}")
    binding = {**base, **overrides}
    for role, name in binding.items():
        if name not in EXTRACTORS:
            raise ConfigError(f"role {role!r} is bound to extractor {name!r}, which is not installed; bind another "
                              f"with --bind {role}=EXTRACTOR (installed: {', '.join(EXTRACTORS.names())})")
    return binding


def fits_on_the_fly(spec: ScorerSpec) -> bool:
    """True when `spec` scores with an unsupervised method fitted on the fly (no checkpoint, `auto_fit` set)."""
    if spec.checkpoint or spec.auto_fit is None:
        return False
    cls = METHODS.get(spec.method)
    return cls.trainable and not cls.supervised


def scorer_extractors(spec: ScorerSpec) -> dict[str, Extractor]:
    """role -> extractor for `spec`, without building or fitting the method: the checkpoint's binding, else the
    method's default, with `binding_overrides` applied. A trainable method with neither a checkpoint nor an
    on-the-fly fit is refused here (ConfigError), before any feature is extracted."""
    if spec.checkpoint:
        info = read_checkpoint_info(spec.checkpoint)
        base = checkpoint_extractor_names(spec.checkpoint, info)  # dataset sources -> their bridge extractors
    else:
        cls = METHODS.get(spec.method)
        if cls.trainable and not fits_on_the_fly(spec):
            raise ConfigError(
                f"method {spec.method!r} must be trained first: pass --checkpoint (train with `avhighlights fit` "
                f"or `avhighlights train`), or use a reference method ({', '.join(untrained_methods())})"
            )
        base = cls.default_binding
    return build_extractors(resolve_binding(base, spec.binding_overrides), spec.extractor_overrides, spec.device)


def prepare_scorer(spec: ScorerSpec, infos: Sequence[VideoInfo] = (), store=None,
                   progress: ProgressFn | None = None) -> PreparedScorer:
    """Build the method (from its registry defaults or a checkpoint) and its extractors.

    A checkpoint's own binding is used; it is refused (CheckpointMismatchError) when the installed
    extractors' names or versions, or `binding_overrides`, differ from those it was trained on.
    Without a checkpoint, an unsupervised trainable method is fitted on `infos` (plus the library)
    when `spec.auto_fit` is set (see pipeline/fit_cache.py; `store` is a feature-store spec as in
    `pipeline.run.open_store`); otherwise trainable methods are refused.
    """
    extractors = scorer_extractors(spec)
    if spec.checkpoint:
        info = read_checkpoint_info(spec.checkpoint)
        expected = bridged_binding(spec.checkpoint, info, extractors)  # dataset roles: checked against their bridge
        method, _ = load_checkpoint(spec.checkpoint, expected_binding=expected)
        return PreparedScorer(method, extractors, str(spec.checkpoint), bridge_hop_s=bridge_hop_s(info, extractors))
    if fits_on_the_fly(spec):
        from avhighlights.pipeline.fit_cache import fitted_scorer

        return fitted_scorer(spec, extractors, infos, store, progress)
    dims = {role: ex.dim for role, ex in extractors.items()}
    return PreparedScorer(create_method(spec.method, dims, spec.method_overrides), extractors, None)


def untrained_methods() -> list[str]:
    """Registered methods that score without a checkpoint."""
    return [name for name in METHODS.names() if not METHODS.get(name).trainable]


def build_sample(info: VideoInfo, tracks_by_role: Mapping[str, FeatureTrack]) -> Sample:
    """Align every role's track onto the video's 1-s grid."""
    grid = second_grid(info.duration_s)
    features = {role: align_track(track, grid).values for role, track in tracks_by_role.items()}
    meta = {"path": str(info.path), "n_steps": len(grid)}
    return Sample(video_id=info.sha256[:16], features=features, step_s=1.0, meta=meta)


def score_sample(scorer: PreparedScorer, info: VideoInfo, sample: Sample) -> ScoreCurve:
    """Run the method on an aligned sample; scores live on the 1-s grid."""
    grid = second_grid(info.duration_s)
    n = sample.n_steps
    scores = bridge_predict(scorer.method, sample, info, scorer.bridge_hop_s)  # plain predict unless bridged
    if scores.shape != (n,):
        raise RuntimeError(f"method {scorer.method.name} returned {scores.shape} scores for {n} steps")
    return ScoreCurve(scores, grid.start_s, grid.end_s, scorer.method.name, scorer.checkpoint,
                      extractors=extractor_sources(scorer.extractors))


def registered_extractors() -> list[str]:
    return EXTRACTORS.names()


def describe_path(path: str | Path) -> str:
    return str(Path(path))
