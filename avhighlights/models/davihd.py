"""DAViHD as a supervised highlight method (spec §1): masked MSE on [0, 1] labels, Adam with L2
weight decay, exponential LR decay per epoch, global gradient clipping, NaN/Inf batches skipped,
best epoch chosen by validation top-50 % F1 (§8.2; ties -> later epoch).

Roles follow the configured streams: "visual" -> role "visual", "semantic" -> role "audio"
(PANNs CNN14-16k embeddings), "dynamics" -> role "logmel" (the `logmel` extractor's 1-fps view).
On datasets that ship only visual + PANNs features, run it with modalities ["visual", "semantic"].
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from avhighlights.core.errors import ConfigError
from avhighlights.core.progress import ProgressFn
from avhighlights.core.sample import Sample
from avhighlights.evaluation.metrics import f1_top50
from avhighlights.models.base import METHODS
from avhighlights.models.davihd_net import STREAMS, DAViHDNet, DAViHDShape
from avhighlights.models.joint_va import required_labels
from avhighlights.models.torch_method import (
    Batch,
    BestTracker,
    TorchMethod,
    collate,
    masked_mean,
    minibatches,
    set_seed,
)

STREAM_ROLES = {"visual": "visual", "semantic": "audio", "dynamics": "logmel"}

# Hyper-parameter presets (spec §1.5): the paper's per-dataset values and the authors' code defaults.
PRESETS: dict[str, dict[str, Any]] = {
    "paper_tvsum": {"lr": 5e-6, "epochs": 400, "batch_size": 8, "grad_clip": 0.5},
    "paper_mrhisum": {"lr": 1e-5, "epochs": 200, "batch_size": 16, "grad_clip": 0.5},
    "code": {"lr": 5e-5, "epochs": 200, "batch_size": 8, "grad_clip": 1.0},
}


def validation_f1(method: DAViHDMethod, samples: Sequence[Sample]) -> float:
    """Mean top-50 % F1 over validation videos, skipping those with < 2 steps or all-zero labels (§8.2)."""
    scores = []
    for sample in samples:
        truth = required_labels(sample, method.name)
        if truth.size >= 2 and np.any(truth != 0):
            scores.append(f1_top50(method.predict(sample), truth))
    return float(np.mean(scores)) if scores else 0.0


def finite_batch(batch: Batch) -> bool:
    """False when any feature of the batch is NaN or infinite (such batches are skipped)."""
    return all(bool(torch.isfinite(values).all()) for values in batch.features.values())


@METHODS.register("davihd")
class DAViHDMethod(TorchMethod):
    """The dual-pathway audio-visual detector; see the module docstring for roles and training."""

    @dataclass(frozen=True)
    class Config:
        """`modalities` ⊆ ("visual", "semantic", "dynamics"); `sa_mode` "early" | "late"; `fusion`
        "multiply" | "concat". `dynamics_dim` is D_d (2048 as published; smaller only for CPU tests).
        `preset` picks lr / epochs / batch_size / grad_clip ("paper_tvsum", "paper_mrhisum", "code");
        a field set here overrides the preset. `bn_momentum` is the momentum of the FDY CNN's stage
        BatchNorms in torch semantics (running = (1 - m) * running + m * batch). The default 0.99 is
        the spec's and the authors' code's value: a Keras decay carried into PyTorch, where it means
        "eval-mode running stats = (almost) those of the last training batch" (here one clip, as
        the CNN runs per sample). 0.01-0.1 is the usual torch value (a running average over many
        clips). `bn_running_stats` False makes those BatchNorms keep no running statistics and
        normalise each clip by its own statistics in eval mode as in training (the CNN runs one clip at
        a time); the A_d transient test uses it to generalise to held-out clips."""

        modalities: tuple[str, ...] = STREAMS
        sa_mode: str = "early"
        fusion: str = "multiply"
        dynamics_dim: int = 2048
        heads: int = 4
        dynamics_heads: int = 8
        dropout: float = 0.1
        preset: str = "paper_tvsum"
        lr: float | None = None
        epochs: int | None = None
        batch_size: int | None = None
        grad_clip: float | None = None
        weight_decay: float = 1e-4
        lr_decay: float = 0.99
        drop_last: bool = True
        bn_momentum: float = 0.99
        bn_running_stats: bool = True

    roles: ClassVar[tuple[str, ...]] = tuple(STREAM_ROLES.values())
    supervised = True
    default_binding = {"visual": "r3d34", "audio": "panns_cnn14_16k", "logmel": "logmel"}

    def __init__(self, config: Any, feature_dims: Mapping[str, int]):
        self.roles = self.roles_for(config)
        missing = [role for role in self.roles if role not in feature_dims]
        if missing:
            raise ConfigError(f"davihd: modalities {tuple(config.modalities)} read role(s) {missing}, which the "
                              f"features do not provide (have {sorted(feature_dims)}); e.g. set modalities to "
                              f"['visual', 'semantic'] for visual + PANNs-only data")
        self.hparams = resolve_hparams(config)
        super().__init__(config, feature_dims)

    @classmethod
    def roles_for(cls, config: Any) -> tuple[str, ...]:
        """The roles read under `config`, in stream order."""
        unknown = [m for m in config.modalities if m not in STREAM_ROLES]
        if unknown:
            raise ConfigError(f"davihd: unknown modalities {unknown}; choose from {STREAMS}")
        return tuple(STREAM_ROLES[m] for m in STREAMS if m in config.modalities)

    def shape(self) -> DAViHDShape:
        cfg, dims = self.config, self.feature_dims
        return DAViHDShape(visual_dim=dims.get("visual", 0), semantic_dim=dims.get("audio", 0),
                           n_mels=dims.get("logmel", 0), dynamics_dim=cfg.dynamics_dim,
                           modalities=tuple(cfg.modalities), sa_mode=cfg.sa_mode, fusion=cfg.fusion, heads=cfg.heads,
                           dynamics_heads=cfg.dynamics_heads, dropout=cfg.dropout,
                           bn_momentum=cfg.bn_momentum, bn_running_stats=cfg.bn_running_stats)

    def build_module(self) -> DAViHDNet:
        return DAViHDNet(self.shape())

    def forward_scores(self, batch: Batch) -> torch.Tensor:
        feats = batch.features
        return self.module(feats.get("visual"), feats.get("audio"), feats.get("logmel"), batch.mask)

    def fit(self, train: Sequence[Sample], val: Sequence[Sample] | None = None, seed: int = 0,
            progress: ProgressFn | None = None) -> dict[str, Any]:
        set_seed(seed)
        rng = np.random.default_rng(seed)
        hp = self.hparams
        pairs = [(s, required_labels(s, self.name)) for s in train]
        optimiser = torch.optim.Adam(self.module.parameters(), lr=hp["lr"], weight_decay=self.config.weight_decay)
        schedule = torch.optim.lr_scheduler.ExponentialLR(optimiser, gamma=self.config.lr_decay)
        tracker, history, skipped = BestTracker(), [], 0
        for epoch in range(hp["epochs"]):
            loss, n_skipped = self._train_epoch(pairs, optimiser, rng)
            history.append(loss)
            skipped += n_skipped
            if val:
                tracker.update(validation_f1(self, val), epoch, self.module)
            schedule.step()
            if progress:
                progress(f"epoch {epoch + 1}/{hp['epochs']} loss {loss:.4f}", (epoch + 1) / hp["epochs"])
        tracker.restore(self.module)
        return {"train_loss": history, "best_epoch": tracker.best_epoch, "skipped_batches": skipped,
                "best_val_f1": tracker.best_score if val else None, "parameters": self.parameter_count(),
                "hyperparameters": dict(hp)}

    def _train_epoch(self, pairs: list[tuple[Sample, np.ndarray]], optimiser: torch.optim.Optimizer,
                     rng: np.random.Generator) -> tuple[float, int]:
        """One pass; returns (mean loss over used batches, number of skipped batches)."""
        self.module.train()
        losses, skipped = [], 0
        for chunk in minibatches(pairs, self.hparams["batch_size"], rng, drop_last=self.config.drop_last):
            batch = collate([s for s, _ in chunk], self.roles, self.device, labels=[t for _, t in chunk])
            loss = masked_mse(self.forward_scores(batch), batch.labels, batch.mask) if finite_batch(batch) else None
            if loss is None or not torch.isfinite(loss):
                skipped += 1
                continue
            optimiser.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.module.parameters(), self.hparams["grad_clip"])
            optimiser.step()
            losses.append(float(loss.detach()))
        return (float(np.mean(losses)) if losses else float("nan")), skipped


def masked_mse(scores: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """sum(mask * (y - y_hat)^2) / sum(mask) over the whole batch: scores, labels, mask (B, T)."""
    return masked_mean((labels - scores) ** 2, mask)


def resolve_hparams(config: Any) -> dict[str, Any]:
    """lr / epochs / batch_size / grad_clip: the preset's values, replaced by fields set in `config`."""
    if config.preset not in PRESETS:
        raise ConfigError(f"davihd: preset must be one of {sorted(PRESETS)}, got {config.preset!r}")
    chosen = dict(PRESETS[config.preset])
    for key in chosen:
        value = getattr(config, key)
        if value is not None:
            chosen[key] = value
    if chosen["batch_size"] < 1 or chosen["epochs"] < 0 or chosen["lr"] <= 0:
        raise ConfigError(f"davihd: invalid hyper-parameters {chosen}")
    return chosen


__all__ = ["DAViHDMethod", "PRESETS", "masked_mse", "resolve_hparams", "validation_f1"]
