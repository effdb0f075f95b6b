"""Attention blocks shared by the supervised detectors (Joint-VA, HPCL) and their relatives.

Masks follow one convention throughout: `mask` / `memory_mask` are True on valid steps. Padded
keys never receive attention and padded query rows are zeroed on output, so a video's scores do
not depend on how much padding its batch carries.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def zero_padded(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """`x` (B, T, D) with rows where `mask` (B, T) is False set to 0."""
    return x * mask.unsqueeze(-1).to(x.dtype)


def masked_time_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over valid steps: (B, T, D), (B, T) -> (B, D)."""
    weights = mask.unsqueeze(-1).to(x.dtype)  # (B, T, 1)
    return (x * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)


class FeedForward(nn.Module):
    """Linear -> ReLU -> Dropout -> Linear, from `d_in` through `d_hidden` to `d_out`."""

    def __init__(self, d_in: int, d_hidden: int, d_out: int, dropout: float):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d_in, d_hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(d_hidden, d_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class CrossAttentionBlock(nn.Module):
    """Scaled dot-product multi-head attention of `query` over `memory`, plus residual and LayerNorm.

    With `noise_sentinel`, one learned token is appended to the memory (never masked), so a query
    can attend to "nothing" when the other stream is uninformative (Joint-VA's noise sentinel).
    Used with memory = query it is the unimodal self-attention block.
    """

    def __init__(self, d_model: int, heads: int, dropout: float, noise_sentinel: bool = False):
        super().__init__()
        self.attn = nn.MultiheadAttention(d_model, heads, dropout=dropout, batch_first=True)
        self.norm = nn.LayerNorm(d_model)
        self.drop = nn.Dropout(dropout)
        self.sentinel = nn.Parameter(torch.randn(1, 1, d_model) * 0.02) if noise_sentinel else None

    def forward(self, query: torch.Tensor, query_mask: torch.Tensor, memory: torch.Tensor,
                memory_mask: torch.Tensor) -> torch.Tensor:
        """query (B, T, D), memory (B, S, D) -> (B, T, D), padded query rows zeroed."""
        memory, memory_mask = self._with_sentinel(memory, memory_mask)
        attended, _ = self.attn(query, memory, memory, key_padding_mask=~memory_mask, need_weights=False)
        return zero_padded(self.norm(query + self.drop(attended)), query_mask)

    def _with_sentinel(self, memory: torch.Tensor, memory_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.sentinel is None:
            return memory, memory_mask
        batch = memory.shape[0]
        memory = torch.cat([memory, self.sentinel.expand(batch, 1, -1)], dim=1)  # (B, S+1, D)
        valid = torch.ones(batch, 1, dtype=torch.bool, device=memory_mask.device)
        return memory, torch.cat([memory_mask, valid], dim=1)  # (B, S+1)


class DecoderLayer(nn.Module):
    """Canonical transformer-decoder layer without self-attention: cross-attention over a memory
    (residual + LayerNorm), then an FFN (residual + LayerNorm)."""

    def __init__(self, d_model: int, heads: int, ffn_hidden: int, dropout: float):
        super().__init__()
        self.cross = CrossAttentionBlock(d_model, heads, dropout)
        self.ffn = FeedForward(d_model, ffn_hidden, d_model, dropout)
        self.norm = nn.LayerNorm(d_model)
        self.drop = nn.Dropout(dropout)

    def forward(self, query: torch.Tensor, query_mask: torch.Tensor, memory: torch.Tensor,
                memory_mask: torch.Tensor) -> torch.Tensor:
        """query (B, Tq, D) over memory (B, S, D) -> (B, Tq, D)."""
        x = self.cross(query, query_mask, memory, memory_mask)
        return zero_padded(self.norm(x + self.drop(self.ffn(x))), query_mask)


class ValueResidualEncoderLayer(nn.Module):
    """HPCL intra-modality encoder layer (Eqs. 1-3): F' = softmax(Q K^T / sqrt(d_k)) S + S with
    Q, K in d_k and the value projection S in d_v (the residual is on S, not on the input),
    then FFN d_v -> hidden -> d_model and a LayerNorm."""

    def __init__(self, d_model: int, heads: int, d_k: int, d_v: int, ffn_hidden: int, dropout: float):
        super().__init__()
        if d_k % heads or d_v % heads:
            raise ValueError(f"d_k={d_k} and d_v={d_v} must be divisible by heads={heads}")
        self.heads = heads
        self.q_proj, self.k_proj = nn.Linear(d_model, d_k), nn.Linear(d_model, d_k)
        self.s_proj = nn.Linear(d_model, d_v)
        self.attn_drop = dropout
        self.ffn = FeedForward(d_v, ffn_hidden, d_model, dropout)
        self.norm = nn.LayerNorm(d_model)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x (B, T, d_model), mask (B, T) -> (B, T, d_model)."""
        q, k, s = self._split(self.q_proj(x)), self._split(self.k_proj(x)), self._split(self.s_proj(x))  # (B, H, T, dh)
        key_mask = mask[:, None, None, :]  # (B, 1, 1, T), True = may be attended
        drop = self.attn_drop if self.training else 0.0
        attended = F.scaled_dot_product_attention(q, k, s, attn_mask=key_mask, dropout_p=drop)  # (B, H, T, dv/H)
        merged = self._merge(attended + s)  # (B, T, d_v)
        return zero_padded(self.norm(self.ffn(merged)), mask)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        batch, steps, width = x.shape
        return x.view(batch, steps, self.heads, width // self.heads).transpose(1, 2)

    @staticmethod
    def _merge(x: torch.Tensor) -> torch.Tensor:
        batch, heads, steps, width = x.shape
        return x.transpose(1, 2).reshape(batch, steps, heads * width)
