"""The DAViHD network (Joo & Oh; spec §1.3 rows 1-10, ablations §1.7, initialisation §1.5).

Streams ("modalities"): "visual" (Z_v, T x D_v), "semantic" (PANNs embeddings Z_s, T x D_s) and
"dynamics" (1-fps log-Mel, T x n_mels, through the FDY CNN to Z_d, T x D_d). Any non-empty subset
may be used. Early-SA encodes each audio stream before fusion, Late-SA fuses first and then runs one
self-attention layer; fusion multiplies (D_s = D_d) or concatenates and projects back to D_a = D_s.
With visual and audio present, bidirectional double-projection cross-attention with residuals feeds
the score MLP on [Z'_v; Z'_a; S_v; S_a]; a unimodal model scores its self-attended stream directly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from avhighlights.core.errors import ConfigError
from avhighlights.models.attention import zero_padded
from avhighlights.models.fdy import BN_MOMENTUM, DynamicsCNN, replicate_pad_time
from avhighlights.models.transformer_blocks import (
    DoubleProjectionCrossAttention,
    PostNormEncoderLayer,
    PreNormEncoder,
    SinusoidalPositionalEncoding,
)

STREAMS = ("visual", "semantic", "dynamics")
SA_MODES = ("early", "late")
FUSIONS = ("multiply", "concat")
MLP_HIDDEN = (1024, 512)
MLP_LN_EPS = 1e-6


@dataclass(frozen=True)
class DAViHDShape:
    """Everything that sizes the network. Widths D_v and D_s come from the input features;
    `dynamics_dim` is D_d (2048 in the paper); `heads` is used by the visual/semantic/late layers and
    the cross-attention, `dynamics_heads` by the dynamics pre-norm stack (FFN 4 x D_d); `bn_momentum`
    (torch semantics) and `bn_running_stats` are those of the FDY CNN's stage BatchNorms."""

    visual_dim: int = 512
    semantic_dim: int = 2048
    n_mels: int = 128
    dynamics_dim: int = 2048
    modalities: tuple[str, ...] = STREAMS
    sa_mode: str = "early"
    fusion: str = "multiply"
    heads: int = 4
    dynamics_heads: int = 8
    dynamics_layers: int = 2
    dropout: float = 0.1
    bn_momentum: float = BN_MOMENTUM
    bn_running_stats: bool = True

    def __post_init__(self) -> None:
        if not 0.0 <= self.bn_momentum <= 1.0:
            raise ConfigError(f"davihd: bn_momentum must lie in [0, 1], got {self.bn_momentum}")
        check_choice("modalities", self.modalities, STREAMS, allow_subset=True)
        check_choice("sa_mode", (self.sa_mode,), SA_MODES)
        check_choice("fusion", (self.fusion,), FUSIONS)
        if self.has_both_audio and self.fusion == "multiply" and self.semantic_dim != self.dynamics_dim:
            raise ConfigError(f"davihd: multiply fusion needs D_s = D_d, got {self.semantic_dim} and "
                              f"{self.dynamics_dim}")

    @property
    def audio_streams(self) -> tuple[str, ...]:
        return tuple(m for m in ("semantic", "dynamics") if m in self.modalities)

    @property
    def has_both_audio(self) -> bool:
        return len(self.audio_streams) == 2

    @property
    def audio_dim(self) -> int:
        """D_a: D_s when the semantic stream is present, else D_d."""
        return self.semantic_dim if "semantic" in self.modalities else self.dynamics_dim


def check_choice(field: str, values: Sequence[str], allowed: Sequence[str], allow_subset: bool = False) -> None:
    """ConfigError unless `values` is one allowed value (or, with `allow_subset`, a non-empty
    duplicate-free subset of them)."""
    values = tuple(values)
    ok = bool(values) and len(set(values)) == len(values) and set(values) <= set(allowed)
    if not ok or (not allow_subset and len(values) != 1):
        kind = "a non-empty subset of" if allow_subset else "one of"
        raise ConfigError(f"davihd: {field} must be {kind} {tuple(allowed)}, got {values}")


def score_mlp(width: int, dropout: float) -> nn.Sequential:
    """Linear -> 1024, LN, ReLU, Dropout, Linear -> 512, LN, ReLU, Dropout, Linear -> 1 (logit)."""
    hidden_1, hidden_2 = MLP_HIDDEN
    return nn.Sequential(
        nn.Linear(width, hidden_1), nn.LayerNorm(hidden_1, eps=MLP_LN_EPS), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(hidden_1, hidden_2), nn.LayerNorm(hidden_2, eps=MLP_LN_EPS), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(hidden_2, 1))


class DynamicsEncoder(nn.Module):
    """Log-Mel (B, T, n_mels) -> Z_d (B, T, D_d): per sample over its own valid length, FDY CNN,
    flatten channel x frequency, adaptive average pooling back to the sample's T, Linear; then
    sinusoidal positional encoding and dropout on the padded batch."""

    def __init__(self, n_mels: int, width: int, dropout: float, bn_momentum: float = BN_MOMENTUM,
                 bn_running_stats: bool = True):
        super().__init__()
        self.cnn = DynamicsCNN(n_mels, bn_momentum=bn_momentum, bn_running_stats=bn_running_stats)
        self.proj = nn.Linear(self.cnn.out_dim, width)
        self.position = SinusoidalPositionalEncoding(width, dropout)

    def encode_one(self, spectrogram: torch.Tensor) -> torch.Tensor:
        """(T, n_mels) -> (T, D_d) for one sample's valid steps."""
        steps = spectrogram.shape[0]
        maps = self.cnn(replicate_pad_time(spectrogram)[None, None])  # (1, C, T', F')
        flat = maps.permute(0, 2, 1, 3).flatten(2)  # (1, T', C * F')
        pooled = F.adaptive_avg_pool1d(flat.transpose(1, 2), steps).transpose(1, 2)  # (1, T, C * F')
        return self.proj(pooled[0])

    def forward(self, logmel: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        lengths = mask.sum(dim=1).tolist()
        out = logmel.new_zeros(*mask.shape, self.proj.out_features)  # (B, T, D_d)
        for i, steps in enumerate(lengths):
            out[i, :steps] = self.encode_one(logmel[i, :steps])
        return zero_padded(self.position(out), mask)


class AudioEncoder(nn.Module):
    """The dual-pathway audio encoder with its fusion: (semantic, log-Mel) -> Z'_a (B, T, D_a)."""

    def __init__(self, shape: DAViHDShape):
        super().__init__()
        self.shape = shape
        early = shape.sa_mode == "early"
        if "semantic" in shape.modalities and early:
            self.semantic_sa = PostNormEncoderLayer(shape.semantic_dim, shape.heads, shape.dropout)
        if "dynamics" in shape.modalities:
            self.dynamics = DynamicsEncoder(shape.n_mels, shape.dynamics_dim, shape.dropout, shape.bn_momentum,
                                            shape.bn_running_stats)
            if early:
                self.dynamics_sa = PreNormEncoder(shape.dynamics_dim, shape.dynamics_heads, 4 * shape.dynamics_dim,
                                                  shape.dropout, shape.dynamics_layers)
        if shape.has_both_audio and shape.fusion == "concat":
            self.fuse_proj = nn.Linear(shape.semantic_dim + shape.dynamics_dim, shape.audio_dim)
        if not early:
            self.late_sa = PostNormEncoderLayer(shape.audio_dim, shape.heads, shape.dropout)

    def forward(self, semantic: torch.Tensor | None, logmel: torch.Tensor | None, mask: torch.Tensor) -> torch.Tensor:
        streams = []
        if "semantic" in self.shape.modalities:
            streams.append(self._semantic(require(semantic, "semantic"), mask))
        if "dynamics" in self.shape.modalities:
            streams.append(self._dynamics(require(logmel, "dynamics"), mask))
        fused = self._fuse(streams, mask)  # (B, T, D_a)
        return fused if self.shape.sa_mode == "early" else self.late_sa(fused, mask)

    def _semantic(self, semantic: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        semantic = zero_padded(semantic, mask)
        return self.semantic_sa(semantic, mask) if self.shape.sa_mode == "early" else semantic

    def _dynamics(self, logmel: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        z_d = self.dynamics(logmel, mask)
        return self.dynamics_sa(z_d, mask) if self.shape.sa_mode == "early" else z_d

    def _fuse(self, streams: list[torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        if len(streams) == 1:
            return streams[0]
        if self.shape.fusion == "multiply":
            return streams[0] * streams[1]
        return zero_padded(self.fuse_proj(torch.cat(streams, dim=-1)), mask)


def require(features: torch.Tensor | None, stream: str) -> torch.Tensor:
    if features is None:
        raise ValueError(f"DAViHDNet: stream {stream!r} is enabled but its features were not given")
    return features


class DAViHDNet(nn.Module):
    """forward(visual (B,T,D_v) | None, semantic (B,T,D_s) | None, logmel (B,T,n_mels) | None,
    mask (B,T)) -> scores (B,T) in [0, 1], 0 on padded steps."""

    def __init__(self, shape: DAViHDShape):
        super().__init__()
        self.shape = shape
        self.has_visual = "visual" in shape.modalities
        self.has_audio = bool(shape.audio_streams)
        if self.has_visual:
            self.visual_sa = PostNormEncoderLayer(shape.visual_dim, shape.heads, shape.dropout)
        if self.has_audio:
            self.audio = AudioEncoder(shape)
        if self.has_visual and self.has_audio:
            self.audio_to_visual = DoubleProjectionCrossAttention(shape.visual_dim, shape.audio_dim, shape.heads,
                                                                  shape.dropout)
            self.visual_to_audio = DoubleProjectionCrossAttention(shape.audio_dim, shape.visual_dim, shape.heads,
                                                                  shape.dropout)
        self.score_mlp = score_mlp(self.mlp_width(), shape.dropout)
        davihd_init_(self)

    def mlp_width(self) -> int:
        """2 (D_v + D_a) with both modalities, else the single stream's width."""
        visual = self.shape.visual_dim if self.has_visual else 0
        audio = self.shape.audio_dim if self.has_audio else 0
        return 2 * (visual + audio) if visual and audio else visual + audio

    def forward(self, visual: torch.Tensor | None, semantic: torch.Tensor | None, logmel: torch.Tensor | None,
                mask: torch.Tensor) -> torch.Tensor:
        parts = []
        if self.has_visual:
            parts.append(self.visual_sa(zero_padded(require(visual, "visual"), mask), mask))  # Z'_v
        if self.has_audio:
            parts.append(self.audio(semantic, logmel, mask))  # Z'_a
        if len(parts) == 2:
            z_v, z_a = parts
            s_v = z_v + self.audio_to_visual(z_v, mask, z_a, mask)
            s_a = z_a + self.visual_to_audio(z_a, mask, z_v, mask)
            parts += [zero_padded(s_v, mask), zero_padded(s_a, mask)]
        logits = self.score_mlp(torch.cat(parts, dim=-1)).squeeze(-1)  # (B, T)
        return torch.sigmoid(logits).masked_fill(~mask, 0.0)


@torch.no_grad()
def davihd_init_(module: nn.Module) -> None:
    """The authors' init by parameter name (spec §1.5): biases 0.1; >= 2-D "weight"s without
    "norm" Xavier-uniform (gain sqrt 2); 1-D "weight"s without "norm" U(-0.1, 0.1); named norms keep 1."""
    for name, param in module.named_parameters():
        leaf = name.rsplit(".", 1)[-1]
        if "bias" in leaf:
            param.fill_(0.1)
        elif "weight" in leaf and "norm" not in name:
            if param.dim() >= 2:
                nn.init.xavier_uniform_(param, gain=math.sqrt(2.0))
            else:
                nn.init.uniform_(param, -0.1, 0.1)


def parameter_count(shape: DAViHDShape) -> int:
    """Parameters of the network for `shape`, counted on the meta device (nothing is allocated)."""
    with torch.device("meta"):
        net = DAViHDNet(shape)
    return sum(p.numel() for p in net.parameters())
