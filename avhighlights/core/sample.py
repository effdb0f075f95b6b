"""What a method reads: one video's aligned features per role (`Sample`), and where a role's features
come from (`FeatureSource`: an extractor for raw video, or a dataset feature stream)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np


def identity_hash(identity: Mapping[str, Any]) -> str:
    """sha256 of an extractor identity (`Extractor.identity()`), the same before and after a JSON round trip."""
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class FeatureSource:
    """Where a role's features come from: an extractor (kind='extractor') or a dataset stream.

    `identity` is the extractor's full `Extractor.identity()` (config and weights hash, what keys the feature
    store) when known; checkpoints record it (`to_binding_json`), results files keep the short form (`to_json`).
    """

    name: str
    version: str
    kind: str = "extractor"
    dim: int = 0
    identity: Mapping[str, Any] | None = field(default=None, hash=False)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "kind": self.kind, "dim": self.dim}

    def to_binding_json(self) -> dict[str, Any]:
        """`to_json` plus the identity, when known."""
        return {**self.to_json(), **({"identity": dict(self.identity)} if self.identity is not None else {})}

    @property
    def identity_hash(self) -> str | None:
        return identity_hash(self.identity) if self.identity is not None else None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FeatureSource:
        identity = data.get("identity")
        if identity is not None and not isinstance(identity, Mapping):
            raise TypeError(f"binding identity is a JSON {type(identity).__name__}, not an object")
        return cls(str(data["name"]), str(data["version"]), str(data.get("kind", "extractor")), int(data.get("dim", 0)),
                   dict(identity) if identity is not None else None)


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
