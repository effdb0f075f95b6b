"""Frequency-dynamic convolution with temporal attention pooling (DAViHD's audio dynamics CNN,
spec §1.3 row 3 and §1.4).

Tensors are laid out (B, C, T, F): batch, channels, time steps, frequency bins. An FDY stage
mixes K basis kernels per sample and per frequency bin with weights gamma (B, K, F), computed from
that stage's own input by a "TA + VA + average" time-pooled descriptor.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

N_BASIS = 4
TEMPERATURE = 31.0
CHANNELS = (16, 32, 64, 128, 128, 128)
POOLS = ((2, 2), (2, 2), (1, 2), (1, 2), (1, 2), (1, 2))  # (time, freq) per stage
BN_EPS = 1e-3
BN_MOMENTUM = 0.99  # the FDY code's value (a Keras decay) used with torch semantics, as that code does
MIN_FRAMES = 4  # replicate-pad shorter spectrograms so two (2, 2) poolings leave >= 1 step


def hidden_width(channels: int) -> int:
    """Bottleneck width of the attention conv blocks: max(floor(C / 4), 4)."""
    return max(channels // 4, 4)


def conv_block_2d(channels: int) -> nn.Sequential:
    """The "2D Conv block": Conv 3x3 (C -> hidden), BatchNorm, ReLU, Conv 1x1 (hidden -> C)."""
    hidden = hidden_width(channels)
    return nn.Sequential(nn.Conv2d(channels, hidden, 3, padding=1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU(),
                         nn.Conv2d(hidden, channels, 1))


def frame_differences(x: torch.Tensor) -> torch.Tensor:
    """|x_t - x_{t-1}| along time (dim 2) with the first difference set to 0 (DAViHD, not circular)."""
    diff = (x[:, :, 1:] - x[:, :, :-1]).abs()  # (B, C, T-1, F)
    return torch.cat([torch.zeros_like(x[:, :, :1]), diff], dim=2)  # (B, C, T, F)


class TemporalAttentionPooling(nn.Module):
    """p = sum_t(x_s * alpha) + sum_t(x_s * beta) + mean_t(x): (B, C, T, F) -> (B, C, F).

    x_s = sigmoid(g_x(x)) is the saliency gate, alpha = softmax_t(g_alpha(x)) the temporal attention
    and beta = softmax_t(g_beta(|x_t - x_{t-1}|)) the velocity attention; each softmax runs over
    time separately for every (channel, frequency) cell.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.g_x = conv_block_2d(channels)
        self.g_alpha = conv_block_2d(channels)
        self.g_beta = conv_block_2d(channels)

    def maps(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(saliency gate, alpha, beta), each (B, C, T, F)."""
        gate = torch.sigmoid(self.g_x(x))
        alpha = torch.softmax(self.g_alpha(x), dim=2)
        beta = torch.softmax(self.g_beta(frame_differences(x)), dim=2)
        return gate, alpha, beta

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, alpha, beta = self.maps(x)
        return (gate * alpha).sum(dim=2) + (gate * beta).sum(dim=2) + x.mean(dim=2)  # (B, C, F)


class KernelAttention(nn.Module):
    """gamma (B, K, F) = softmax over k of (a_k(f) / temperature), with the logits a from the
    TAP descriptor through the "1D Conv block" along frequency."""

    def __init__(self, channels: int, n_basis: int = N_BASIS, temperature: float = TEMPERATURE):
        super().__init__()
        self.temperature = temperature
        self.pool = TemporalAttentionPooling(channels)
        hidden = hidden_width(channels)
        self.logits = nn.Sequential(nn.Conv1d(channels, hidden, 3, padding=1, bias=False), nn.BatchNorm1d(hidden),
                                    nn.ReLU(), nn.Conv1d(hidden, n_basis, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, C, T, F) -> gamma (B, K, F), summing to 1 over K."""
        return torch.softmax(self.logits(self.pool(x)) / self.temperature, dim=1)


class FDYConv2d(nn.Module):
    """y = sum_k gamma_k(f) * (W_k conv x); 3x3 basis kernels (K, C_out, C_in, 3, 3), no bias."""

    def __init__(self, in_channels: int, out_channels: int, n_basis: int = N_BASIS,
                 temperature: float = TEMPERATURE):
        super().__init__()
        self.n_basis, self.out_channels = n_basis, out_channels
        self.attention = KernelAttention(in_channels, n_basis, temperature)
        self.weight = nn.Parameter(torch.empty(n_basis, out_channels, in_channels, 3, 3))
        nn.init.kaiming_normal_(self.weight)  # overwritten by the model-wide init (spec §1.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, C_in, T, F) -> (B, C_out, T, F)."""
        gamma = self.attention(x)  # (B, K, F)
        batch, _, steps, freqs = x.shape
        kernels = self.weight.reshape(self.n_basis * self.out_channels, *self.weight.shape[2:])
        basis_out = F.conv2d(x, kernels, padding=1).view(batch, self.n_basis, self.out_channels, steps, freqs)
        return (basis_out * gamma[:, :, None, None, :]).sum(dim=1)  # (B, C_out, T, F)


class DynamicsStage(nn.Module):
    """Conv (plain with bias, or FDY without), BatchNorm (eps 1e-3, momentum 0.99), ReLU, AvgPool.

    `bn_momentum` has torch semantics: running = (1 - m) * running + m * batch, so 0.99 keeps
    (almost) only the last training batch's statistics for eval mode. With `bn_running_stats` False the
    norm keeps none and uses the statistics of the batch it sees in eval mode too."""

    def __init__(self, in_channels: int, out_channels: int, pool: tuple[int, int], dynamic: bool,
                 bn_momentum: float = BN_MOMENTUM, bn_running_stats: bool = True):
        super().__init__()
        self.conv = FDYConv2d(in_channels, out_channels) if dynamic else nn.Conv2d(in_channels, out_channels, 3,
                                                                                  padding=1)
        self.norm = nn.BatchNorm2d(out_channels, eps=BN_EPS, momentum=bn_momentum,
                                   track_running_stats=bn_running_stats)
        self.pool = nn.AvgPool2d(pool)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(torch.relu(self.norm(self.conv(x))))


class DynamicsCNN(nn.Module):
    """Six stages: (B, 1, T, 128) log-Mel (time, freq) -> (B, 128, T // 4, 2); stage 1 plain, 2-6 FDY.
    `bn_momentum` and `bn_running_stats` go to the six stage BatchNorms (the attention blocks' BatchNorms
    keep torch's defaults)."""

    def __init__(self, n_mels: int = 128, channels: Sequence[int] = CHANNELS,
                 pools: Sequence[tuple[int, int]] = POOLS, bn_momentum: float = BN_MOMENTUM,
                 bn_running_stats: bool = True):
        super().__init__()
        if not 0.0 <= bn_momentum <= 1.0:
            raise ValueError(f"DynamicsCNN: bn_momentum must lie in [0, 1], got {bn_momentum}")
        widths = (1, *channels)
        self.stages = nn.ModuleList(DynamicsStage(widths[i], widths[i + 1], pools[i], dynamic=i > 0,
                                                  bn_momentum=bn_momentum, bn_running_stats=bn_running_stats)
                                    for i in range(len(channels)))
        freq_left = n_mels
        for _, pool_f in pools:
            freq_left //= pool_f
        if freq_left < 1:
            raise ValueError(f"DynamicsCNN: {n_mels} mel bins vanish under the frequency pooling {tuple(pools)}")
        self.out_dim = channels[-1] * freq_left  # flattened channel x frequency width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, 1, T, F) -> (B, C, T', F')."""
        for stage in self.stages:
            x = stage(x)
        return x


def replicate_pad_time(spectrogram: torch.Tensor, min_frames: int = MIN_FRAMES) -> torch.Tensor:
    """(T, F) -> (max(T, min_frames), F), repeating the last frame."""
    missing = min_frames - spectrogram.shape[0]
    if missing <= 0:
        return spectrogram
    return torch.cat([spectrogram, spectrogram[-1:].expand(missing, -1)], dim=0)
