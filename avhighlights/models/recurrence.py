"""Unsupervised highlight detection from audio-visual recurrence (Islam, Paul, Rochan; spec §2).

`fit` never reads labels: it clusters the training videos into pseudo-categories (or uses the
real `sample.group` metadata), scores every clip by how much it recurs across its category
(pseudo_labels.py), binarises the top 50 % per video and trains one Joint-VA network
(joint_va.py, no noise sentinel) over all training videos with BCE against those pseudo-labels.

`direct_pseudo=True` skips the network: a test video is assigned to the training category whose
mean descriptor is nearest (cosine) and scored against that category's mean unit vectors (its
own clips are not part of the category mean, unlike training videos).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from avhighlights.core.errors import ConfigError
from avhighlights.core.progress import ProgressFn
from avhighlights.core.sample import Sample
from avhighlights.models.base import METHODS, collapsed_fraction
from avhighlights.models.joint_va import MODALITIES, JointVAMethod, JointVANet
from avhighlights.models.pseudo_labels import (
    av_pseudo_scores,
    category_means,
    normaliser,
    pseudo_categories,
    recurrence_scores,
    top_fraction_binary,
    unit_rows,
    video_descriptor,
)
from avhighlights.models.torch_method import run_epochs, set_seed

# Paper's Adam learning rate and epochs per dataset (Islam et al., training table).
PRESETS: dict[str, tuple[float, int]] = {"tvsum": (2.5e-3, 20), "youtube": (5e-3, 100), "qvhighlights": (5e-4, 10)}
CATEGORY_SOURCES = ("pseudo", "real")
PSEUDO_PREFIX = "pseudo."


@dataclass(frozen=True)
class RecurrenceConfig:
    dataset_preset: str = "tvsum"  # lr / epochs from PRESETS unless lr / epochs are set (> 0)
    lr: float = 0.0
    epochs: int = 0
    batch_size: int = 4
    weight_decay: float = 0.0
    d_model: int = 512
    heads: int = 4
    dropout: float = 0.5
    attn_dropout: float = 0.1
    noise_sentinel: bool = False
    modalities: tuple[str, ...] = MODALITIES  # network inputs (unimodal ablations: ("visual",) / ("audio",))
    extra_self_attention: int = 0
    extra_fc: int = 0
    fc_hidden: int = 256
    ph_mode: str = "av"  # pseudo-highlight source: "av", "a" (A-PH only) or "v" (V-PH only)
    similarity: str = "cosine"  # or "pearson"
    categories: str = "pseudo"  # or "real" (sample.group metadata)
    top_fraction: float = 0.5
    direct_pseudo: bool = False  # use pseudo-highlight scores as predictions (no network)


def resolve_schedule(config: RecurrenceConfig) -> tuple[float, int]:
    """(lr, epochs): explicit values win, else the dataset preset."""
    if config.dataset_preset not in PRESETS:
        raise ConfigError(f"recurrence: dataset_preset must be one of {sorted(PRESETS)}, got {config.dataset_preset!r}")
    lr, epochs = PRESETS[config.dataset_preset]
    return (config.lr if config.lr > 0 else lr), (config.epochs if config.epochs > 0 else epochs)


def assign_categories(train: Sequence[Sample], source: str, seed: int) -> tuple[np.ndarray, dict[str, Any]]:
    """Category index per training video: pseudo (clustering) or real (`sample.group`)."""
    if source == "pseudo":
        descriptors = np.stack([video_descriptor(s.features["visual"], s.features["audio"]) for s in train])
        return pseudo_categories(descriptors, seed)
    if source == "real":
        groups = sorted({str(s.group) for s in train})
        return np.array([groups.index(str(s.group)) for s in train]), {"k": len(groups), "real_groups": groups}
    raise ConfigError(f"recurrence: categories must be one of {CATEGORY_SOURCES}, got {source!r}")


@METHODS.register("recurrence")
class RecurrenceMethod(JointVAMethod):
    """Islam et al.: Joint-VA trained on audio-visual recurrence pseudo-labels (module docstring)."""

    Config = RecurrenceConfig
    roles = MODALITIES
    supervised = False
    default_binding = {"visual": "r3d34", "audio": "panns_cnn14_16k"}

    def __init__(self, config: RecurrenceConfig, feature_dims: Mapping[str, int]):
        super().__init__(config, feature_dims)
        self.pseudo_state: dict[str, torch.Tensor] = {}
        normaliser(config.similarity)
        resolve_schedule(config)

    def build_module(self) -> nn.Module:
        cfg = self.config
        return JointVANet(self.feature_dims["visual"], self.feature_dims["audio"], cfg.d_model, cfg.heads, cfg.dropout,
                          cfg.noise_sentinel, cfg.modalities, cfg.extra_self_attention, cfg.extra_fc, cfg.fc_hidden,
                          cfg.attn_dropout)

    def pseudo_labels(self, train: Sequence[Sample], seed: int) -> tuple[list[np.ndarray], dict[str, Any]]:
        """Binary pseudo-labels per training video plus a clustering report; stores category means."""
        cfg = self.config
        categories, report = assign_categories(train, cfg.categories, seed)
        visual = [np.asarray(s.features["visual"]) for s in train]
        audio = [np.asarray(s.features["audio"]) for s in train]
        scores = av_pseudo_scores(visual, audio, categories, cfg.ph_mode, cfg.similarity)
        self._store_categories(visual, audio, categories)
        report["category_sizes"] = np.bincount(categories).tolist()
        return [top_fraction_binary(s, cfg.top_fraction) for s in scores], report

    def _store_categories(self, visual: list[np.ndarray], audio: list[np.ndarray], categories: np.ndarray) -> None:
        norm = normaliser(self.config.similarity)
        cats = sorted(np.unique(categories).tolist())
        means_v, means_a = category_means(visual, categories, norm), category_means(audio, categories, norm)
        descriptors = unit_rows(np.stack([video_descriptor(v, a) for v, a in zip(visual, audio, strict=True)]))
        centroids = np.stack([descriptors[categories == c].mean(axis=0) for c in cats])  # (K, Dv + Da)
        arrays = {"mean_visual": np.stack([means_v[c] for c in cats]),
                  "mean_audio": np.stack([means_a[c] for c in cats]), "centroids": centroids}
        self.pseudo_state = {PSEUDO_PREFIX + k: torch.from_numpy(v.astype(np.float32)) for k, v in arrays.items()}

    def fit(self, train: Sequence[Sample], val: Sequence[Sample] | None = None, seed: int = 0,
            progress: ProgressFn | None = None) -> dict[str, Any]:
        """Pseudo-label `train` (labels never read) and, unless `direct_pseudo`, train the network.
        `val` is ignored: without labels there is no honest checkpoint selection; the last epoch is kept."""
        set_seed(seed)
        targets, report = self.pseudo_labels(train, seed)
        if self.config.direct_pseudo:
            return {"clustering": report, "network": False}
        lr, epochs = resolve_schedule(self.config)
        rng = np.random.default_rng(seed)
        pairs = list(zip(train, targets, strict=True))
        optimiser = torch.optim.Adam(self.module.parameters(), lr=lr, weight_decay=self.config.weight_decay)
        run = run_epochs(self.module, epochs, lambda _: self._train_epoch(pairs, optimiser, rng), None, progress)
        collapsed = collapsed_fraction([self.predict(Sample(s.video_id, s.features, s.step_s)) for s in train])
        if collapsed > 0.5:
            warnings.warn(f"recurrence: the network gives near-constant scores on {collapsed:.0%} of its training "
                          f"videos (final loss {run.history[-1]['total']:.4f}; ln 2 = 0.6931 is a constant output): it "
                          f"collapsed at lr {lr:g}. Its scores carry no ranking; refit with a lower learning rate "
                          "(--set lr=0.0005) or use direct_pseudo", stacklevel=2)
        return {"clustering": report, "train_loss": [h["total"] for h in run.history], "lr": lr, "epochs": epochs,
                "parameters": self.parameter_count(), "near_constant_on_train": collapsed}

    def predict(self, sample: Sample) -> np.ndarray:
        if self.config.direct_pseudo:
            return self.direct_scores(sample)
        return super().predict(sample)

    def direct_scores(self, sample: Sample) -> np.ndarray:
        """Pseudo-highlight scores of an unseen video against its nearest training category."""
        if not self.pseudo_state:
            raise ConfigError("recurrence: direct_pseudo needs fit() (or a checkpoint) before predict()")
        visual, audio = np.asarray(sample.features["visual"]), np.asarray(sample.features["audio"])
        centroids = self.pseudo_state[PSEUDO_PREFIX + "centroids"].double().numpy()
        cat = int(np.argmax(centroids @ unit_rows(video_descriptor(visual, audio)[None])[0]))
        norm = normaliser(self.config.similarity)
        parts = {"v": (visual, "mean_visual"), "a": (audio, "mean_audio")}
        chosen = [parts[m] for m in ("v", "a") if m in self.config.ph_mode]
        return np.mean([recurrence_scores(x, self.pseudo_state[PSEUDO_PREFIX + key][cat].double().numpy(), norm)
                        for x, key in chosen], axis=0)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {**super().state_dict(), **self.pseudo_state}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.pseudo_state = {k: torch.as_tensor(v) for k, v in state.items() if k.startswith(PSEUDO_PREFIX)}
        super().load_state_dict({k: v for k, v in state.items() if not k.startswith(PSEUDO_PREFIX)})
