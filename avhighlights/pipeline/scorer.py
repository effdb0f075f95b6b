"""The scorer factory: a `ScorerSpec` is parsed once into a source, and one function builds the scorer of that
source (as timm's `create_model` parses a model name and dispatches):

- `checkpoint`: `spec.checkpoint` is a file; it names its own method and binding.
- `zoo`: `spec.checkpoint` is `zoo:NAME`, or a method that must be trained (and is not fitted on the fly) has a
  default zoo model (avhighlights/zoo); results record `zoo:NAME` as their checkpoint.
- `fit`: an unsupervised trainable method without a checkpoint and with `spec.auto_fit`: fitted on the scored
  videos plus the library, or a cached fit reused (pipeline/fit_cache.py, the factory's collaborator).
- `fresh`: a reference method (no training) built from its registry defaults and `method_overrides`.

Anything else (a trainable method with neither a checkpoint, nor a zoo model, nor an on-the-fly fit) is a
ConfigError, raised before any feature is extracted. `spec.device` reaches the extractors and the method.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from avhighlights.core.errors import ConfigError
from avhighlights.core.progress import ProgressFn
from avhighlights.core.types import VideoInfo
from avhighlights.extractors.base import Extractor
from avhighlights.models.base import METHODS, HighlightMethod, create_method
from avhighlights.models.checkpoint import load_checkpoint, read_checkpoint_info
from avhighlights.pipeline.binding import build_extractors, extractor_sources, resolve_binding
from avhighlights.pipeline.bridge_scoring import bridge_hop_s, bridged_binding, checkpoint_extractor_names
from avhighlights.pipeline.fit_cache import FitUse, StoreOpener, fit_or_reuse
from avhighlights.pipeline.run_config import ScorerSpec
from avhighlights.zoo import ZOO_PREFIX, ZooEntry, default_entry, zoo_entry, zoo_path

Notify = Callable[[str], None]  # one line for the user (which zoo model or which fit scores)


@dataclass(frozen=True)
class ScorerSource:
    """Where the scorer of a spec comes from (module docstring)."""

    kind: str  # "checkpoint", "zoo", "fit" or "fresh"
    method: str
    checkpoint: Path | None = None  # the file the method is loaded from (checkpoint, zoo)
    label: str | None = None  # what results record as `checkpoint`: the path or `zoo:NAME`
    zoo: ZooEntry | None = None
    by_default: bool = False  # a zoo model chosen because none was named


@dataclass(frozen=True)
class PreparedScorer:
    """A ready method plus the extractors that feed its roles."""

    method: HighlightMethod
    extractors: dict[str, Extractor]  # role -> extractor
    checkpoint: str | None
    fit: FitUse | None = None  # the on-the-fly fit (or the cached fit reused) that scores
    bridge_hop_s: float | None = None  # row step of the bridge extractors of a dataset-trained checkpoint


def untrained_methods() -> list[str]:
    """Registered methods that score without a checkpoint (every method is imported)."""
    return [name for name, cls in METHODS.load_all().items() if not cls.trainable]


def fits_on_the_fly(spec: ScorerSpec) -> bool:
    """True when `spec` scores with an unsupervised method fitted on the fly (no checkpoint, `auto_fit` set)."""
    if spec.checkpoint or spec.auto_fit is None:
        return False
    cls = METHODS.get(spec.method)
    return cls.trainable and not cls.supervised


def parse_scorer_source(spec: ScorerSpec) -> ScorerSource:
    """The source of `spec` (module docstring); a zoo checkpoint's sha256 is verified here."""
    if spec.checkpoint and str(spec.checkpoint).startswith(ZOO_PREFIX):
        return _zoo_source(zoo_entry(str(spec.checkpoint)), by_default=False)
    if spec.checkpoint:
        return ScorerSource("checkpoint", spec.method, Path(spec.checkpoint), str(spec.checkpoint))
    cls = METHODS.get(spec.method)
    if not cls.trainable:
        return ScorerSource("fresh", spec.method)
    if fits_on_the_fly(spec):
        return ScorerSource("fit", spec.method)
    entry = default_entry(spec.method)
    if entry is not None:
        return _zoo_source(entry, by_default=True)
    raise ConfigError(f"method {spec.method!r} must be trained first: pass --checkpoint (train with `avhighlights fit` "
                      f"or `avhighlights train`), or use a reference method ({', '.join(untrained_methods())})")


def _zoo_source(entry: ZooEntry, by_default: bool) -> ScorerSource:
    return ScorerSource("zoo", entry.method, zoo_path(entry), entry.label, entry, by_default)


def source_extractors(source: ScorerSource, spec: ScorerSpec) -> dict[str, Extractor]:
    """role -> extractor of `source`: a checkpoint's own binding, else the method's default, with
    `spec.binding_overrides` applied, built with `spec.extractor_overrides` on `spec.device`."""
    if source.checkpoint is not None:
        info = read_checkpoint_info(source.checkpoint)
        base = checkpoint_extractor_names(source.checkpoint, info)  # dataset sources -> their bridge extractors
    else:
        base = METHODS.get(source.method).default_binding
    return build_extractors(resolve_binding(base, spec.binding_overrides), spec.extractor_overrides, spec.device)


def scorer_extractors(spec: ScorerSpec) -> dict[str, Extractor]:
    """role -> extractor for `spec`, without building or fitting the method (a bad method, binding or checkpoint
    fails here, before any feature is extracted)."""
    return source_extractors(parse_scorer_source(spec), spec)


def create_scorer(spec: ScorerSpec, infos: Sequence[VideoInfo] = (), store: StoreOpener | None = None,
                  progress: ProgressFn | None = None, notify: Notify | None = None) -> PreparedScorer:
    """The scorer of `spec`: its source parsed once, then built by that source's builder. A checkpoint (or zoo
    model) is refused (CheckpointMismatchError) when the installed extractors' names or versions, or
    `binding_overrides`, differ from those it was trained on. An on-the-fly fit uses `infos` (the scored videos)
    and `store` (the run's feature store opener; None: no cache). `notify` gets one line naming the zoo model
    or the fit that scores."""
    source = parse_scorer_source(spec)
    extractors = source_extractors(source, spec)
    notify = notify or _silent
    if source.by_default:
        notify(f"using zoo model {source.zoo.name} ({source.zoo.summary})")
    scorer = _BUILDERS[source.kind](source, spec, extractors, infos, store or _no_store, progress, notify)
    scorer.method.to_device(spec.device)
    return scorer


def _from_checkpoint(source: ScorerSource, spec: ScorerSpec, extractors: Mapping[str, Extractor],
                     infos: Sequence[VideoInfo], store: StoreOpener, progress: ProgressFn | None,
                     notify: Notify) -> PreparedScorer:
    info = read_checkpoint_info(source.checkpoint)
    expected = bridged_binding(source.checkpoint, info, extractors)  # dataset roles: checked against their bridge
    method, _ = load_checkpoint(source.checkpoint, expected_binding=expected)
    return PreparedScorer(method, dict(extractors), source.label, bridge_hop_s=bridge_hop_s(info, extractors))


def _fitted(source: ScorerSource, spec: ScorerSpec, extractors: Mapping[str, Extractor],
            infos: Sequence[VideoInfo], store: StoreOpener, progress: ProgressFn | None,
            notify: Notify) -> PreparedScorer:
    use = fit_or_reuse(spec.method, spec.method_overrides, spec.auto_fit, extractors, infos, store, progress,
                       spec.device)
    method, _ = load_checkpoint(use.checkpoint, expected_binding=extractor_sources(extractors))
    notify(use.message())
    return PreparedScorer(method, dict(extractors), str(use.checkpoint), use)


def _fresh(source: ScorerSource, spec: ScorerSpec, extractors: Mapping[str, Extractor],
           infos: Sequence[VideoInfo], store: StoreOpener, progress: ProgressFn | None,
           notify: Notify) -> PreparedScorer:
    dims = {role: ex.dim for role, ex in extractors.items()}
    return PreparedScorer(create_method(spec.method, dims, spec.method_overrides), dict(extractors), None)


_BUILDERS = {"checkpoint": _from_checkpoint, "zoo": _from_checkpoint, "fit": _fitted, "fresh": _fresh}


def _silent(_line: str) -> None:
    return None


def _no_store():
    return None
