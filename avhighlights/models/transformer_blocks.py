"""Transformer pieces of DAViHD (spec §1.3 rows 1, 2, 4, 5, 7, 8), all masked the same way:
`mask` is True on valid steps, padded keys are never attended, padded output rows are zeroed.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from avhighlights.models.attention import zero_padded


def sinusoidal_encoding(length: int, width: int, device: torch.device | str = "cpu",
                        dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The standard sin/cos table (length, width), computed for any length (no 5000-step cap)."""
    position = torch.arange(length, dtype=torch.float64, device=device)[:, None]  # (L, 1)
    freqs = torch.exp(torch.arange(0, width, 2, dtype=torch.float64, device=device) * (-math.log(10000.0) / width))
    table = torch.zeros(length, width, dtype=torch.float64, device=device)
    table[:, 0::2] = torch.sin(position * freqs)
    table[:, 1::2] = torch.cos(position * freqs[: width // 2])
    return table.to(dtype)


class SinusoidalPositionalEncoding(nn.Module):
    """x + PE[:T], then dropout; the table is built on the fly, so sequences may exceed 5000 steps."""

    def __init__(self, width: int, dropout: float):
        super().__init__()
        self.width = width
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, T, D) -> (B, T, D)."""
        return self.drop(x + sinusoidal_encoding(x.shape[1], self.width, x.device, x.dtype)[None])


class PostNormEncoderLayer(nn.Module):
    """DAViHD's visual / semantic self-attention: MHA of width `width` (no input projection, no
    positional encoding, no dropout on attention weights or residuals), Add & LayerNorm, FFN
    width -> 4 width -> width (ReLU, dropout, linear), Add & LayerNorm."""

    def __init__(self, width: int, heads: int = 4, dropout: float = 0.1, ffn_factor: int = 4):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(width, heads, dropout=0.0, batch_first=True)
        self.ffn = nn.Sequential(nn.Linear(width, ffn_factor * width), nn.ReLU(), nn.Dropout(dropout),
                                 nn.Linear(ffn_factor * width, width))
        self.norm1 = nn.LayerNorm(width)
        self.norm2 = nn.LayerNorm(width)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x (B, T, D), mask (B, T) -> (B, T, D)."""
        attended, _ = self.self_attn(x, x, x, key_padding_mask=~mask, need_weights=False)
        x = self.norm1(x + attended)
        return zero_padded(self.norm2(x + self.ffn(x)), mask)


class PreNormEncoder(nn.Module):
    """`layers` pre-norm transformer encoder layers (ReLU FFN, dropout), no final LayerNorm."""

    def __init__(self, width: int, heads: int = 8, ffn_hidden: int = 8192, dropout: float = 0.1, layers: int = 2):
        super().__init__()
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(width, heads, ffn_hidden, dropout, activation="relu", batch_first=True,
                                       norm_first=True)
            for _ in range(layers))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x (B, T, D), mask (B, T) -> (B, T, D)."""
        for layer in self.layers:
            x = layer(x, src_key_padding_mask=~mask)
        return zero_padded(x, mask)


class DoubleProjectionCrossAttention(nn.Module):
    """Queries from one stream, keys/values from another: linear q (query_dim -> query_dim) and
    k, v (memory_dim -> query_dim), then a standard multi-head attention of width query_dim with its
    own in/out projections (the "double projection" of the DAViHD code). No residual here."""

    def __init__(self, query_dim: int, memory_dim: int, heads: int = 4, dropout: float = 0.1):
        super().__init__()
        self.q = nn.Linear(query_dim, query_dim)
        self.k = nn.Linear(memory_dim, query_dim)
        self.v = nn.Linear(memory_dim, query_dim)
        self.attn = nn.MultiheadAttention(query_dim, heads, dropout=dropout, batch_first=True)

    def forward(self, query: torch.Tensor, query_mask: torch.Tensor, memory: torch.Tensor,
                memory_mask: torch.Tensor) -> torch.Tensor:
        """query (B, T, Dq), memory (B, S, Dm) -> (B, T, Dq), padded query rows zeroed."""
        out, _ = self.attn(self.q(query), self.k(memory), self.v(memory), key_padding_mask=~memory_mask,
                           need_weights=False)
        return zero_padded(out, query_mask)
