"""What a method reads: one video's aligned features per role (`Sample`), and where a role's features
come from (`FeatureSource`: an extractor for raw video, or a dataset feature stream)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class FeatureSource:
    """Where a role's features come from: an extractor (kind='extractor') or a dataset stream."""

    name: str
    version: str
    kind: str = "extractor"
    dim: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "kind": self.kind, "dim": self.dim}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FeatureSource:
        return cls(str(data["name"]), str(data["version"]), str(data.get("kind", "extractor")), int(data.get("dim", 0)))


@dataclass
class Sample:
    """One video for a method: aligned features per role (same T), the step, optional labels."""

    video_id: str
    features: dict[str, np.ndarray]  # role -> (T, D_role) float32
    step_s: float
    labels: np.ndarray | None = None  # (T,) float, in [0, 1] (or binary), when known
    group: str | None = None  # category / domain
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_steps(self) -> int:
        """Number of steps: from the features, or `meta["n_steps"]` for a feature-less sample."""
        if self.features:
            return int(next(iter(self.features.values())).shape[0])
        return int(self.meta["n_steps"])
