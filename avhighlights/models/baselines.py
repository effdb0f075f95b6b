"""Reference methods: honest floors for every benchmark, needing no training.

* `random`: uniform scores, deterministic per (seed, video id); what any method must beat.
* `loudness`: energy dynamics from the `loudness` extractor's per-step [rms_dbfs, peak_dbfs,
  spectral_flux]; score = z(rms_dbfs - running median of rms_dbfs over `window_s`)
  + `flux_weight` * max(z(spectral_flux), 0). Loud moments relative to their surroundings and
  sudden spectral change rank high; a steady loud soundtrack does not.
* `feature_norm`: the L2 norm of each step's visual feature (`sign` = -1 ranks low norms first).
  Training-free, yet on the shared I3D features it beats every unsupervised method we reproduced
  (TVSum top-5 53.89, YouTube 62.89): the floor an unsupervised method must clear to be worth training.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from avhighlights.core.errors import ConfigError
from avhighlights.core.sample import Sample
from avhighlights.models.base import METHODS, HighlightMethod

RMS_COLUMN, FLUX_COLUMN = 0, 2
MEDIAN_CHUNK_VALUES = 1 << 20  # bounds the working copy of `running_median` (values per chunk of windows)


@dataclass(frozen=True)
class RandomConfig:
    seed: int = 0  # `bench` sets it to the run seed


@METHODS.register("random")
class RandomMethod(HighlightMethod):
    """Uniform [0, 1) scores from a generator seeded by (config.seed, crc32(video_id))."""

    Config = RandomConfig
    roles = ()
    trainable = False
    supervised = False

    def predict(self, sample: Sample) -> np.ndarray:
        rng = np.random.default_rng([self.config.seed, zlib.crc32(sample.video_id.encode("utf-8"))])
        return rng.random(sample.n_steps)


@dataclass(frozen=True)
class LoudnessConfig:
    window_s: float = 30.0  # running-median window for the local loudness reference
    flux_weight: float = 0.5  # weight of the positive spectral-flux term


def running_median(values: np.ndarray, window: int) -> np.ndarray:
    """The median of the `window` values centred on each of the 1-D `values` (odd `window`), the edges repeated
    beyond both ends: `scipy.ndimage.median_filter(values, size=window, mode="nearest")`, exactly, in numpy (an odd
    window's median is one of its values), computed in chunks so a long input needs little memory."""
    if window < 1 or window % 2 == 0:
        raise ValueError(f"running_median needs an odd window, got {window}")
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return values.copy()
    windows = sliding_window_view(np.pad(values, window // 2, mode="edge"), window)  # (T, window), a view
    rows = max(1, MEDIAN_CHUNK_VALUES // window)
    return np.concatenate([np.median(windows[i:i + rows], axis=1) for i in range(0, len(values), rows)])


def zscore(values: np.ndarray) -> np.ndarray:
    """(x - mean) / std; all zeros for a constant input."""
    std = float(np.std(values))
    return np.zeros_like(values) if std < 1e-9 else (values - np.mean(values)) / std


@METHODS.register("loudness")
class LoudnessMethod(HighlightMethod):
    """Energy dynamics plus positive spectral flux (see the module docstring)."""

    Config = LoudnessConfig
    roles = ("loudness",)
    trainable = False
    supervised = False
    default_binding = {"loudness": "loudness"}

    def __init__(self, config: LoudnessConfig, feature_dims: Mapping[str, int]):
        super().__init__(config, feature_dims)
        dim = self.feature_dims.get("loudness", 0)
        if dim <= FLUX_COLUMN:
            raise ConfigError(f"loudness method needs [rms_dbfs, peak_dbfs, spectral_flux] columns, got dim {dim}")
        if config.window_s <= 0:
            raise ConfigError(f"loudness window_s must be positive, got {config.window_s}")

    def predict(self, sample: Sample) -> np.ndarray:
        feats = np.asarray(sample.features["loudness"], dtype=np.float64)  # (T, 3)
        rms, flux = feats[:, RMS_COLUMN], feats[:, FLUX_COLUMN]
        window = max(1, int(round(self.config.window_s / sample.step_s))) | 1  # odd, in steps
        dynamics = rms - running_median(rms, window)
        return zscore(dynamics) + self.config.flux_weight * np.maximum(zscore(flux), 0.0)


@dataclass(frozen=True)
class FeatureNormConfig:
    role: str = "visual"
    sign: float = 1.0  # +1: high-norm steps first; -1: low-norm steps first


@METHODS.register("feature_norm")
class FeatureNormMethod(HighlightMethod):
    """sign * ||x_t||_2 of the configured role's feature at every step."""

    Config = FeatureNormConfig
    roles = ("visual",)
    trainable = False
    supervised = False
    default_binding = {"visual": "mobilenet_v1_025"}

    @classmethod
    def roles_for(cls, config: FeatureNormConfig) -> tuple[str, ...]:
        return (config.role,)

    def __init__(self, config: FeatureNormConfig, feature_dims: Mapping[str, int]):
        super().__init__(config, feature_dims)
        if config.sign not in (1.0, -1.0):
            raise ConfigError(f"feature_norm sign must be 1 or -1, got {config.sign}")

    def predict(self, sample: Sample) -> np.ndarray:
        feats = np.asarray(sample.features[self.config.role], dtype=np.float64)  # (T, D)
        return self.config.sign * np.linalg.norm(feats, axis=1)
