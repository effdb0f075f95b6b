"""HPCL (Li et al., arXiv 2206.10157; spec §3): intra-modality encoders with a global-context
decoder, cross-modality co-occurrence decoders, three classifier heads with learnable weights,
trained with BCE + 0.3 dense SupCon (HPCL) + 0.1 hard-pair ranking on balanced 20-segment draws.

Shapes: T steps, d = `d_model` (256). Per modality m: F^m_n (B,T,d) from the encoders,
F^m_hat = F^m_n + G^m, F^m_tilde (B,T,d) from the co-occurrence decoder whose memory is
[F^v_n ; F^a_n] (2T tokens). The contrastive / ranking embedding is
concat_m(F^m_hat + F^m_tilde) (B,T,2d) (Eq. 7). Scores are the weighted sum of head logits.
Ablations: `fusion="cross_attention"` (memory = the other modality, Joint-VA style),
`fusion="concat"` (no decoder; the fused head reads concat(F^v_hat, F^a_hat)), single modalities,
no global decoder, random global query, any loss weight set to 0.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from avhighlights.core.errors import ConfigError
from avhighlights.core.progress import ProgressFn
from avhighlights.core.sample import Sample
from avhighlights.models.attention import DecoderLayer, FeedForward, ValueResidualEncoderLayer, masked_time_mean
from avhighlights.models.base import METHODS
from avhighlights.models.hpcl_losses import balanced_segment_indices, dense_supcon_loss, hard_pair_ranking_loss
from avhighlights.models.joint_va import MODALITIES, binarise_labels, check_modalities, required_labels, validation_ap
from avhighlights.models.torch_method import Batch, TorchMethod, collate, minibatches, run_epochs, set_seed

MemoryFn = Callable[[str, dict[str, torch.Tensor], torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def co_occurrence_memory(modality: str, encoded: dict[str, torch.Tensor], mask: torch.Tensor):
    """Keys/values [F^v_n ; F^a_n] (B, 2T, d) and their mask (B, 2T)."""
    return torch.cat([encoded[m] for m in MODALITIES], dim=1), torch.cat([mask, mask], dim=1)


def cross_modal_memory(modality: str, encoded: dict[str, torch.Tensor], mask: torch.Tensor):
    """Keys/values from the other modality only (B, T, d) (the CR-AV ablation)."""
    other = next(m for m in MODALITIES if m != modality)
    return encoded[other], mask


FUSIONS: dict[str, MemoryFn | None] = {"co_occurrence": co_occurrence_memory, "cross_attention": cross_modal_memory,
                                       "concat": None}
GLOBAL_INITS = ("mean", "random")


@dataclass
class HPCLOutput:
    scores: torch.Tensor  # (B, T) weighted sum of head logits
    head_logits: list[torch.Tensor]  # each (B, T)
    embedding: torch.Tensor  # (B, T, n_modalities * d)


class GlobalContext(nn.Module):
    """Global decoder: one query (mean of valid segments + learned offset, or a learned vector)
    attends to F_n through decoder layers, giving G (B, 1, d)."""

    def __init__(self, d_model: int, heads: int, ffn_hidden: int, layers: int, dropout: float, init: str):
        super().__init__()
        self.from_mean = init == "mean"
        self.query = nn.Parameter(torch.zeros(1, d_model) if self.from_mean else torch.randn(1, d_model))
        self.layers = nn.ModuleList(DecoderLayer(d_model, heads, ffn_hidden, dropout) for _ in range(layers))

    def forward(self, encoded: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        base = masked_time_mean(encoded, mask) if self.from_mean else torch.zeros_like(encoded[:, 0])  # (B, d)
        g = (base + self.query).unsqueeze(1)  # (B, 1, d)
        g_mask = torch.ones(g.shape[:2], dtype=torch.bool, device=g.device)
        for layer in self.layers:
            g = layer(g, g_mask, encoded, mask)
        return g


class ModalityEncoder(nn.Module):
    """Linear projection to d, n value-residual encoder layers, optional global context."""

    def __init__(self, d_in: int, d_model: int, heads: int, d_k: int, d_v: int, ffn_hidden: int, layers: int,
                 dropout: float, use_global: bool, global_init: str):
        super().__init__()
        self.proj = nn.Linear(d_in, d_model)
        self.layers = nn.ModuleList(ValueResidualEncoderLayer(d_model, heads, d_k, d_v, ffn_hidden, dropout)
                                    for _ in range(layers))
        self.global_context = (GlobalContext(d_model, heads, ffn_hidden, layers, dropout, global_init)
                               if use_global else None)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, T, D_in) -> (F_n, F_hat), each (B, T, d)."""
        h = self.proj(x) * mask.unsqueeze(-1)  # (B, T, d)
        for layer in self.layers:
            h = layer(h, mask)
        if self.global_context is None:
            return h, h
        return h, h + self.global_context(h, mask) * mask.unsqueeze(-1)


class HPCLNet(nn.Module):
    """The HPCL network; `feature_dims` maps each modality to its input width."""

    def __init__(self, feature_dims: Mapping[str, int], d_model: int = 256, heads: int = 8, d_k: int = 512,
                 d_v: int = 512, ffn_hidden: int = 512, layers: int = 2, attn_dropout: float = 0.1,
                 head_hidden: int = 256, dropout: float = 0.5, modalities: Sequence[str] = MODALITIES,
                 fusion: str = "co_occurrence", use_global_decoder: bool = True, global_init: str = "mean"):
        super().__init__()
        self.modalities = check_modalities(modalities, "HPCLNet")
        _check_choice("fusion", fusion, FUSIONS)
        _check_choice("global_init", global_init, GLOBAL_INITS)
        self.encoders = nn.ModuleDict({m: ModalityEncoder(feature_dims[m], d_model, heads, d_k, d_v, ffn_hidden, layers,
                                                          attn_dropout, use_global_decoder, global_init)
                                       for m in self.modalities})
        bimodal = len(self.modalities) == 2
        self.memory_fn = FUSIONS[fusion] if bimodal else None
        self.decoders = nn.ModuleDict({
            m: nn.ModuleList(DecoderLayer(d_model, heads, ffn_hidden, attn_dropout) for _ in range(layers))
            for m in (self.modalities if self.memory_fn else ())})
        widths = [d_model] * len(self.modalities) + ([2 * d_model] if bimodal else [])
        self.heads = nn.ModuleList(FeedForward(w, head_hidden, 1, dropout) for w in widths)  # per-modality, fused
        self.head_weights = nn.Parameter(torch.full((len(widths),), 1.0 / len(widths)))

    def forward(self, features: Mapping[str, torch.Tensor], mask: torch.Tensor) -> HPCLOutput:
        encoded, hatted = {}, {}
        for m in self.modalities:
            encoded[m], hatted[m] = self.encoders[m](features[m], mask)  # (B, T, d) each
        tilde = {m: self._co_occurrence(m, encoded, mask) for m in self.decoders}
        head_inputs = [hatted[m] for m in self.modalities]
        if len(self.modalities) == 2:
            fused_source = tilde if tilde else hatted
            head_inputs.append(torch.cat([fused_source[m] for m in self.modalities], dim=-1))  # (B, T, 2d)
        logits = [head(x).squeeze(-1).masked_fill(~mask, 0.0) for head, x in zip(self.heads, head_inputs, strict=True)]
        scores = torch.einsum("h,hbt->bt", self.head_weights, torch.stack(logits))  # (B, T)
        embedding = torch.cat([hatted[m] + tilde[m] if tilde else hatted[m] for m in self.modalities], dim=-1)
        return HPCLOutput(scores, logits, embedding)

    def _co_occurrence(self, modality: str, encoded: dict[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        memory, memory_mask = self.memory_fn(modality, encoded, mask)
        x = encoded[modality]
        for layer in self.decoders[modality]:
            x = layer(x, mask, memory, memory_mask)
        return x  # (B, T, d)


def _check_choice(option: str, value: str, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ConfigError(f"hpcl: {option} must be one of {sorted(allowed)}, got {value!r}")


@METHODS.register("hpcl")
class HPCLMethod(TorchMethod):
    """Supervised HPCL on binary labels (soft labels binarised: top 50 % of steps; labels already in
    {0, 1}, e.g. YouTube match > 0, are kept)."""

    @dataclass(frozen=True)
    class Config:
        d_model: int = 256
        heads: int = 8
        d_k: int = 512
        d_v: int = 512
        ffn_hidden: int = 512
        layers: int = 2
        attn_dropout: float = 0.1
        head_hidden: int = 256
        dropout: float = 0.5
        modalities: tuple[str, ...] = MODALITIES
        fusion: str = "co_occurrence"
        use_global_decoder: bool = True
        global_init: str = "mean"
        ce_weight: float = 1.0
        hpcl_weight: float = 0.3
        rank_weight: float = 0.1
        fused_ce_weight: float = 0.0  # BCE on the weighted-sum score; > 0 lets the head weights learn
        tau: float = 0.1
        margin: float = 0.7
        rank_region: int = 3
        segments_per_video: int = 20
        min_minority: int = 7
        draws_per_video: int = 1  # balanced 20-segment draws of each training video per epoch (paper: 1)
        lr: float = 1e-4
        weight_decay: float = 0.0
        epochs: int = 20
        batch_size: int = 1

    roles = MODALITIES
    supervised = True
    default_binding = {"visual": "r3d34", "audio": "panns_cnn14_16k"}

    def build_module(self) -> nn.Module:
        cfg = self.config
        if not 0 <= 2 * cfg.min_minority <= cfg.segments_per_video:
            raise ConfigError(f"hpcl: need 0 <= 2*min_minority <= segments_per_video, got {cfg.min_minority}, "
                              f"{cfg.segments_per_video}")
        if cfg.draws_per_video < 1:
            raise ConfigError(f"hpcl: draws_per_video must be >= 1, got {cfg.draws_per_video}")
        return HPCLNet(self.feature_dims, cfg.d_model, cfg.heads, cfg.d_k, cfg.d_v, cfg.ffn_hidden, cfg.layers,
                       cfg.attn_dropout, cfg.head_hidden, cfg.dropout, cfg.modalities, cfg.fusion,
                       cfg.use_global_decoder, cfg.global_init)

    def forward_scores(self, batch: Batch) -> torch.Tensor:
        return self.module(batch.features, batch.mask).scores

    def loss(self, batch: Batch) -> dict[str, torch.Tensor]:
        """The weighted total and its parts for a batch with binary labels."""
        cfg, out = self.config, self.module(batch.features, batch.mask)
        ce = sum(self._bce(logits, batch) for logits in out.head_logits)
        ce = ce + cfg.fused_ce_weight * self._bce(out.scores, batch)
        supcon = dense_supcon_loss(out.embedding, batch.labels, batch.mask, cfg.tau)
        rank = hard_pair_ranking_loss(out.embedding, batch.labels, batch.mask, cfg.margin, cfg.rank_region)
        total = cfg.ce_weight * ce + cfg.hpcl_weight * supcon + cfg.rank_weight * rank
        return {"total": total, "ce": ce, "hpcl": supcon, "rank": rank}

    @staticmethod
    def _bce(logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        per_step = F.binary_cross_entropy_with_logits(logits, batch.labels, reduction="none")
        return (per_step * batch.mask).sum() / batch.mask.sum().clamp_min(1)

    def fit(self, train: Sequence[Sample], val: Sequence[Sample] | None = None, seed: int = 0,
            progress: ProgressFn | None = None) -> dict[str, Any]:
        set_seed(seed)
        rng = np.random.default_rng(seed)
        pairs = [(s, binarise_labels(required_labels(s, self.name))) for s in train] * self.config.draws_per_video
        optimiser = torch.optim.Adam(self.module.parameters(), lr=self.config.lr, weight_decay=self.config.weight_decay)
        report = run_epochs(self.module, self.config.epochs, lambda _: self._train_epoch(pairs, optimiser, rng),
                            (lambda: validation_ap(self, val)) if val else None, progress)
        return {"train_loss": report.history, "best_epoch": report.best_epoch,
                "best_val_ap": report.best_val, "parameters": self.parameter_count()}

    def _train_epoch(self, pairs: list[tuple[Sample, np.ndarray]], optimiser: torch.optim.Optimizer,
                     rng: np.random.Generator) -> dict[str, float]:
        self.module.train()
        sums: dict[str, float] = {}
        steps = 0
        for chunk in minibatches(pairs, self.config.batch_size, rng):
            batch = self._sampled_batch(chunk, rng)
            parts = self.loss(batch)
            optimiser.zero_grad()
            parts["total"].backward()
            optimiser.step()
            for key, value in parts.items():
                sums[key] = sums.get(key, 0.0) + float(value.detach())
            steps += 1
        return {key: value / max(steps, 1) for key, value in sums.items()}

    def _sampled_batch(self, chunk: list[tuple[Sample, np.ndarray]], rng: np.random.Generator) -> Batch:
        """Balanced, sorted `segments_per_video`-step draws of each video, collated."""
        cfg, subs, targets = self.config, [], []
        for sample, labels in chunk:
            idx = balanced_segment_indices(labels, cfg.segments_per_video, cfg.min_minority, rng)
            subs.append(Sample(sample.video_id, {r: sample.features[r][idx] for r in self.roles}, sample.step_s))
            targets.append(labels[idx])
        return collate(subs, self.roles, self.device, labels=targets)
