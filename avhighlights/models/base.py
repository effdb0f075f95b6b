"""The method contract shared by baselines and detectors, used by `bench`, `fit` and `score`.

A method consumes feature *roles* ("visual", "audio", "logmel", ...). Where the features come
from is a *binding* role -> feature source (an extractor name and version for raw video, or a
dataset feature name); checkpoints record the binding, and scoring refuses a mismatch.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from avhighlights.core.near_constant import (  # noqa: F401  (re-exported: the one collapse criterion)
    NEAR_CONSTANT_ATOL,
    NEAR_CONSTANT_RTOL,
    is_near_constant,
    score_scale,
)
from avhighlights.core.progress import ProgressFn
from avhighlights.core.registry import Registry, build_config
from avhighlights.core.sample import FeatureSource, Sample  # noqa: F401  (FeatureSource re-exported)

METHODS: Registry[HighlightMethod] = Registry("method")




class HighlightMethod(ABC):
    """A highlight scorer. Subclasses declare `Config` (frozen dataclass), `roles` they read,
    whether they need `fit` (`trainable`) and whether `fit` needs labels (`supervised`)."""

    name: ClassVar[str]
    Config: ClassVar[type]
    roles: ClassVar[tuple[str, ...]] = ()
    trainable: ClassVar[bool] = True
    supervised: ClassVar[bool] = True
    default_binding: ClassVar[Mapping[str, str]] = {}  # role -> extractor name for raw video
    # config overrides for features on the 1-s grid of `fit`/`score` when the defaults assume another step
    one_second_grid_defaults: ClassVar[Mapping[str, Any]] = {}

    def __init__(self, config: Any, feature_dims: Mapping[str, int]):
        self.config = config
        self.feature_dims = dict(feature_dims)

    def fit(self, train: Sequence[Sample], val: Sequence[Sample] | None = None, seed: int = 0,
            progress: ProgressFn | None = None) -> dict[str, Any]:
        """Train on `train` (labels used only when `supervised`); returns a small report."""
        return {}

    @abstractmethod
    def predict(self, sample: Sample) -> np.ndarray:
        """Scores (T,) for every step of `sample`."""

    def to_device(self, device: str | None) -> HighlightMethod:
        """Run on the torch `device` from now on (None: keep the method's own choice); methods without a
        network run on the CPU and ignore it. Returns self."""
        return self

    def state_dict(self) -> dict[str, Any]:
        """Tensors/arrays to store in a checkpoint (empty for stateless methods)."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what `state_dict` returned (stateless methods accept only an empty state)."""
        if state:
            raise KeyError(f"method {self.name!r} keeps no state, got keys {sorted(state)[:5]}")


def create_method(name: str, feature_dims: Mapping[str, int],
                  overrides: Mapping[str, Any] | None = None) -> HighlightMethod:
    """Build a registered method from its config defaults plus `overrides`."""
    cls = METHODS.get(name)
    return cls(build_config(cls.Config, overrides), feature_dims)


def collapsed_fraction(preds: Sequence[np.ndarray]) -> float:
    """Fraction of videos (of more than one step) whose scores are near-constant (`is_near_constant`): their
    ranking is decided by noise or by the tie rule (earlier step first), which is how a collapsed model can
    still 'score'."""
    judged = [p for p in preds if np.asarray(p).size > 1]
    return float(np.mean([is_near_constant(p) for p in judged])) if judged else 0.0
