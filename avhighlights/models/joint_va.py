"""Joint-VA (Badamdorj et al., ICCV 2021; spec §5 and §2): unimodal self-attention per modality,
bimodal attention in both directions with an optional noise sentinel, a softmax-weighted sum of
the four streams and a two-layer score regressor. `JointVANet` is also the network of the
unsupervised audio-visual recurrence method (§2), which trains it on pseudo-labels.

Stream naming: `a2v` lets visual queries attend to the audio stream (audio informs visual),
`v2a` the reverse; both attend over the *self-attended* streams (Islam Eqs. 5-6).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from avhighlights.core.errors import ConfigError
from avhighlights.core.progress import ProgressFn
from avhighlights.core.sample import Sample
from avhighlights.models.attention import CrossAttentionBlock, zero_padded
from avhighlights.models.base import METHODS, HighlightMethod
from avhighlights.models.torch_method import (
    Batch,
    TorchMethod,
    collate,
    masked_mean,
    minibatches,
    run_epochs,
    set_seed,
)

MODALITIES = ("visual", "audio")


def binarise_labels(labels: np.ndarray, top_fraction: float = 0.5) -> np.ndarray:
    """Binary labels (T,): labels already in {0, 1} are kept; soft scores become 1 on the top
    `top_fraction` of steps (k = max(1, round(fraction * T)), ties broken by earlier step)."""
    labels = np.asarray(labels, dtype=np.float32)
    if np.isin(labels, (0.0, 1.0)).all():
        return labels.copy()
    k = max(1, int(round(top_fraction * labels.size)))
    order = np.argsort(-labels, kind="stable")
    binary = np.zeros_like(labels)
    binary[order[:k]] = 1.0
    return binary


def soft_labels(labels: np.ndarray) -> np.ndarray:
    """Soft targets in [0, 1] used as-is by BCE-with-logits."""
    return np.clip(np.asarray(labels, dtype=np.float32), 0.0, 1.0)


LABEL_MODES: dict[str, Callable[[np.ndarray], np.ndarray]] = {"binary_top50": binarise_labels, "soft": soft_labels}


def required_labels(sample: Sample, method: str) -> np.ndarray:
    """The sample's labels, or a ConfigError naming the video when a supervised method has none."""
    if sample.labels is None:
        raise ConfigError(f"{method}: video {sample.video_id!r} has no labels; the method is supervised")
    return np.asarray(sample.labels, dtype=np.float32)


def validation_ap(method: HighlightMethod, samples: Sequence[Sample]) -> float:
    """Mean per-video average precision (scikit-learn, step AP) on binarised labels; videos whose
    labels are all one class are skipped. Used only for best-epoch selection."""
    from sklearn.metrics import average_precision_score  # here: scoring with a trained model never loads sklearn

    scores = []
    for sample in samples:
        truth = binarise_labels(required_labels(sample, method.name))
        if 0.0 < truth.mean() < 1.0:
            scores.append(average_precision_score(truth, method.predict(sample)))
    return float(np.mean(scores)) if scores else 0.0


def check_modalities(modalities: Sequence[str], owner: str) -> tuple[str, ...]:
    """A non-empty, duplicate-free subset of ("visual", "audio") in canonical order."""
    chosen = tuple(m for m in MODALITIES if m in modalities)
    if not chosen or len(chosen) != len(tuple(modalities)):
        raise ConfigError(f"{owner}: modalities must be a non-empty subset of {MODALITIES}, got {tuple(modalities)}")
    return chosen


class JointVANet(nn.Module):
    """Joint-VA network. forward(visual (B,T,Dv) | None, audio (B,T,Da) | None, mask (B,T)) -> logits (B,T).

    `visual_dim` / `audio_dim`: input feature widths (from the data). `d_model`: attention width
    (inputs are linearly projected to it). `heads`: attention heads. `dropout`: dropout of the score
    regressor; `attn_dropout`: dropout inside attention. `noise_sentinel`: learned "attend to
    nothing" slot in the bimodal blocks. `modalities`: ("visual", "audio") or one of them (a
    unimodal model keeps only its self-attention stream). `extra_self_attention`: additional
    self-attention blocks per modality; `extra_fc`: additional hidden FC layers in the regressor;
    `fc_hidden`: regressor width. Logits on padded steps are 0.
    """

    def __init__(self, visual_dim: int, audio_dim: int, d_model: int = 512, heads: int = 4, dropout: float = 0.5,
                 noise_sentinel: bool = True, modalities: Sequence[str] = MODALITIES, extra_self_attention: int = 0,
                 extra_fc: int = 0, fc_hidden: int = 256, attn_dropout: float = 0.1):
        super().__init__()
        self.modalities = check_modalities(modalities, "JointVANet")
        dims = {"visual": visual_dim, "audio": audio_dim}
        self.proj = nn.ModuleDict({m: nn.Linear(dims[m], d_model) for m in self.modalities})
        self.self_attn = nn.ModuleDict({
            m: nn.ModuleList(CrossAttentionBlock(d_model, heads, attn_dropout) for _ in range(1 + extra_self_attention))
            for m in self.modalities})
        self.bimodal = nn.ModuleDict({
            name: CrossAttentionBlock(d_model, heads, attn_dropout, noise_sentinel)
            for name in (("a2v", "v2a") if len(self.modalities) == 2 else ())})
        self.stream_logits = nn.Parameter(torch.zeros(4 if self.bimodal else 1))  # softmax -> stream weights
        self.regressor = self._regressor(d_model, fc_hidden, extra_fc, dropout)

    @staticmethod
    def _regressor(d_model: int, hidden: int, extra_fc: int, dropout: float) -> nn.Sequential:
        layers: list[nn.Module] = [nn.Linear(d_model, hidden), nn.ReLU(), nn.Dropout(dropout)]
        for _ in range(extra_fc):
            layers += [nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(dropout)]
        return nn.Sequential(*layers, nn.Linear(hidden, 1))

    def stream_weights(self) -> torch.Tensor:
        """Softmax-normalised weights of the streams (vv, aa, a2v, v2a) or of the single stream."""
        return torch.softmax(self.stream_logits, dim=0)

    def forward(self, visual: torch.Tensor | None, audio: torch.Tensor | None, mask: torch.Tensor) -> torch.Tensor:
        inputs = {"visual": visual, "audio": audio}
        streams = [self._self_attend(m, inputs[m], mask) for m in self.modalities]  # each (B, T, D)
        if self.bimodal:
            vv, aa = streams
            streams += [self.bimodal["a2v"](vv, mask, aa, mask), self.bimodal["v2a"](aa, mask, vv, mask)]
        fused = torch.einsum("s,sbtd->btd", self.stream_weights(), torch.stack(streams))  # (B, T, D)
        logits = self.regressor(fused).squeeze(-1)  # (B, T)
        return logits.masked_fill(~mask, 0.0)

    def _self_attend(self, modality: str, features: torch.Tensor | None, mask: torch.Tensor) -> torch.Tensor:
        if features is None:
            raise ValueError(f"JointVANet: modality {modality!r} is enabled but no {modality} features were given")
        x = zero_padded(self.proj[modality](features), mask)  # (B, T, D)
        for block in self.self_attn[modality]:
            x = block(x, mask, x, mask)
        return x


@METHODS.register("joint_va")
class JointVAMethod(TorchMethod):
    """Supervised Joint-VA: BCE-with-logits on per-step labels (binarised top 50 % or soft), Adam,
    padded minibatches with masks, best-epoch selection on `val` when given.

    Joint-VA publishes no optimiser settings. The defaults (Adam 5e-4, 40 epochs) are measured on the shared
    UMT features, 5 seeds (bench/results/joint_va_hpcl_summary.md): on YouTube Highlights, lr 5e-3 left 7 of
    20 fits with a dead score head (training loss ln 2) and mAP 60.99, while 5e-4 trained every fit (final
    loss 0.11-0.48, best epochs median 22 of 40) to mAP 72.10. On TVSum top-5, 5e-4 and 2.5e-3 give the
    same mAP."""

    @dataclass(frozen=True)
    class Config:
        d_model: int = 512
        heads: int = 4
        dropout: float = 0.5
        attn_dropout: float = 0.1
        noise_sentinel: bool = True
        modalities: tuple[str, ...] = MODALITIES
        extra_self_attention: int = 0
        extra_fc: int = 0
        fc_hidden: int = 256
        label_mode: str = "binary_top50"
        lr: float = 5e-4
        weight_decay: float = 0.0
        epochs: int = 40
        batch_size: int = 4

    roles = MODALITIES
    supervised = True
    default_binding = {"visual": "r3d34", "audio": "panns_cnn14_16k"}

    def build_module(self) -> nn.Module:
        cfg = self.config
        if cfg.label_mode not in LABEL_MODES:
            raise ConfigError(f"joint_va: label_mode must be one of {sorted(LABEL_MODES)}, got {cfg.label_mode!r}")
        return JointVANet(self.feature_dims["visual"], self.feature_dims["audio"], cfg.d_model, cfg.heads, cfg.dropout,
                          cfg.noise_sentinel, cfg.modalities, cfg.extra_self_attention, cfg.extra_fc, cfg.fc_hidden,
                          cfg.attn_dropout)

    def forward_scores(self, batch: Batch) -> torch.Tensor:
        return self.module(batch.features.get("visual"), batch.features.get("audio"), batch.mask)

    def fit(self, train: Sequence[Sample], val: Sequence[Sample] | None = None, seed: int = 0,
            progress: ProgressFn | None = None) -> dict[str, Any]:
        set_seed(seed)
        rng = np.random.default_rng(seed)
        to_target = LABEL_MODES[self.config.label_mode]
        pairs = [(s, to_target(required_labels(s, self.name))) for s in train]
        optimiser = torch.optim.Adam(self.module.parameters(), lr=self.config.lr, weight_decay=self.config.weight_decay)
        report = run_epochs(self.module, self.config.epochs, lambda _: self._train_epoch(pairs, optimiser, rng),
                            (lambda: validation_ap(self, val)) if val else None, progress)
        return {"train_loss": [h["total"] for h in report.history], "best_epoch": report.best_epoch,
                "best_val_ap": report.best_val, "parameters": self.parameter_count()}

    def _train_epoch(self, pairs: list[tuple[Sample, np.ndarray]], optimiser: torch.optim.Optimizer,
                     rng: np.random.Generator) -> dict[str, float]:
        self.module.train()
        losses = []
        for chunk in minibatches(pairs, self.config.batch_size, rng):
            batch = collate([s for s, _ in chunk], self.roles, self.device, labels=[t for _, t in chunk])
            per_step = F.binary_cross_entropy_with_logits(self.forward_scores(batch), batch.labels, reduction="none")
            loss = masked_mean(per_step, batch.mask)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            losses.append(float(loss.detach()))
        return {"total": float(np.mean(losses))}
