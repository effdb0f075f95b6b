"""The one configuration of a scoring run: which scorer (and how it is fitted on the fly), which selection, how
clips and result files are written, and which feature store. Built once at each edge (the CLI, a library
call, a flow run) and passed down whole; `to_dict`/`from_dict` round-trip it through JSON (flow parameters,
Dask workers), `changes()` keeps only what differs from the defaults.

    RunConfig(scorer=ScorerSpec(method, checkpoint, ..., auto_fit=AutoFit(...)),
              selection=SelectionConfig(...), render=RenderOptions(...), store="default")
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any

from avhighlights.core.errors import ConfigError
from avhighlights.pipeline.render import DEFAULT_FORMATS, EXPORTS
from avhighlights.pipeline.select import SelectionConfig


@dataclass(frozen=True)
class AutoFit:
    """How `score` fits an unsupervised method without a checkpoint (pipeline/fit_cache.py)."""

    library: tuple[str, ...] = ()  # folders/files fitted with the scored videos; empty: $AVH_LIBRARY
    seed: int = 0
    refit: bool = False
    refit_growth: float = 0.2
    cache_dir: str | None = None  # default <cache>/fits

    def __post_init__(self) -> None:
        if self.refit_growth < 0:
            raise ConfigError(f"--refit-growth must be >= 0, got {self.refit_growth}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AutoFit:
        return _build(cls, data, library=tuple)


@dataclass(frozen=True)
class ScorerSpec:
    """Which method scores a video: a registered name, a checkpoint that names its own method (a path, or
    `zoo:NAME`), or an unsupervised method fitted on the fly (`auto_fit`); see pipeline/scorer.py."""

    method: str = "loudness"
    checkpoint: str | None = None
    method_overrides: Mapping[str, Any] | None = None
    extractor_overrides: Mapping[str, Mapping[str, Any]] | None = None  # extractor name -> config overrides
    device: str | None = None  # torch device of the extractors and the method (None: each picks, cuda if present)
    binding_overrides: Mapping[str, str] | None = None  # role -> extractor name (a checkpoint must agree)
    auto_fit: AutoFit | None = None  # fit an unsupervised method on the fly (no checkpoint)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ScorerSpec:
        return _build(cls, data, auto_fit=lambda v: None if v is None else AutoFit.from_dict(v))


@dataclass(frozen=True)
class RenderOptions:
    """How clips are written: re-encoded (frame accurate) unless `stream_copy`; `formats`: the result files
    (names of `render.EXPORTS`; highlights.json is always written)."""

    stream_copy: bool = False
    write_reel: bool = True
    write_clips: bool = True
    formats: tuple[str, ...] = DEFAULT_FORMATS

    def __post_init__(self) -> None:
        unknown = [name for name in self.formats if name not in EXPORTS]
        if unknown:
            raise ConfigError(f"unknown export formats {unknown}; known: {','.join(EXPORTS)}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RenderOptions:
        return _build(cls, data, formats=tuple)


@dataclass(frozen=True)
class RunConfig:
    """Everything a scoring run needs besides its videos and its output folder."""

    scorer: ScorerSpec = field(default_factory=ScorerSpec)
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    render: RenderOptions = field(default_factory=RenderOptions)
    store: str | None = "default"  # None = no cache; "default" = $AVH_FEATURE_STORE or the user cache

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types only (tuples become lists); `from_dict` rebuilds an equal config."""
        return _plain(self)

    def changes(self) -> dict[str, Any]:
        """`to_dict` without the values that equal the defaults (empty parts dropped); `from_dict` reads it."""
        return _sparse(_plain(self), _plain(RunConfig()))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> RunConfig:
        """A config from `to_dict`/`changes` output (missing keys: defaults); an unknown key is a ConfigError."""
        return _build(cls, data or {}, scorer=ScorerSpec.from_dict, render=RenderOptions.from_dict,
                      selection=lambda v: _build(SelectionConfig, v))


def _build(cls, data: Mapping[str, Any], **convert):
    """`cls(**data)` with `convert[name]` applied to the given fields; unknown keys -> ConfigError."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{cls.__name__}: expected an object, got {type(data).__name__}")
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{cls.__name__}: unknown field(s) {unknown}; known: {sorted(names)}")
    return cls(**{k: convert[k](v) if k in convert else v for k, v in data.items()})


def _plain(value: Any) -> Any:
    if is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _sparse(values: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in values.items():
        default = defaults.get(key)
        if isinstance(value, dict) and isinstance(default, dict) and set(default) >= set(value) and default:
            nested = _sparse(value, default)
            if nested:
                out[key] = nested
        elif value != default:
            out[key] = value
    return out
