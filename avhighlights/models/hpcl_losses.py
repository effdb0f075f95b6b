"""HPCL losses (spec §3, paper Eqs. 8-9) and its balanced segment sampler.

* `dense_supcon_loss`: supervised InfoNCE over the T segments of each video; positives are the
  other segments with the same label, negatives the segments of the other label. Embeddings are
  L2-normalised, temperature tau, and the paper's missing /tau in the denominator is restored.
* `hard_pair_ranking_loss`: hinge max(0, margin - ||f(c-k) - f(c+k)||) over the hard pairs around
  every label-change boundary ("watershed") c, k = 1..L, out-of-range indices replaced by c.
* `balanced_segment_indices`: T = 20 sorted indices per training video with minority class >= 7.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def dense_supcon_loss(embeddings: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor,
                      tau: float = 0.1) -> torch.Tensor:
    """Mean over videos of the mean over anchors (with >= 1 positive) of the mean over positives of
    -log(e^{q.k+/tau} / (e^{q.k+/tau} + sum_{k-} e^{q.k-/tau})).

    embeddings (B, T, D) (normalised here), labels (B, T) in {0, 1}, mask (B, T) True on valid steps.
    Videos without any anchor that has a positive contribute nothing; 0 when none has one.
    """
    q = F.normalize(embeddings, dim=-1)
    logits = q @ q.transpose(1, 2) / tau  # (B, T, T)
    pair_valid = mask[:, :, None] & mask[:, None, :]  # (B, T, T)
    same = labels[:, :, None] == labels[:, None, :]
    eye = torch.eye(labels.shape[1], dtype=torch.bool, device=labels.device)[None]
    positives = pair_valid & same & ~eye
    negatives = pair_valid & ~same
    neg_lse = torch.logsumexp(logits.masked_fill(~negatives, -torch.inf), dim=2, keepdim=True)  # (B, T, 1)
    pair_loss = torch.logaddexp(logits, neg_lse) - logits  # (B, T, T); -log of the InfoNCE ratio
    n_pos = positives.sum(dim=2)  # (B, T)
    anchor_loss = (pair_loss * positives).sum(dim=2) / n_pos.clamp_min(1)  # (B, T)
    anchors = n_pos > 0  # (B, T)
    n_anchors = anchors.sum(dim=1)  # (B,)
    video_loss = (anchor_loss * anchors).sum(dim=1) / n_anchors.clamp_min(1)  # (B,)
    has_anchor = n_anchors > 0
    if not bool(has_anchor.any()):
        return embeddings.sum() * 0.0
    return video_loss[has_anchor].mean()


def hard_pairs(labels: np.ndarray, region: int = 3) -> list[tuple[int, int]]:
    """Index pairs (c - k, c + k), k = 1..region, around each watershed c (a step whose label
    differs from the previous one); indices outside [0, T-1] are replaced by c."""
    labels = np.asarray(labels)
    last = labels.size - 1
    pairs = []
    for c in np.flatnonzero(labels[1:] != labels[:-1]) + 1:
        for k in range(1, region + 1):
            left, right = c - k, c + k
            pairs.append((int(left if left >= 0 else c), int(right if right <= last else c)))
    return pairs


def hard_pair_ranking_loss(features: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor,
                           margin: float = 0.7, region: int = 3) -> torch.Tensor:
    """Mean over videos of sum over hard pairs of max(0, margin - ||f1 - f2||_2), f L2-normalised.

    features (B, T, D), labels (B, T) in {0, 1}, mask (B, T); each video uses its valid steps only.
    """
    unit = F.normalize(features, dim=-1)
    per_video = []
    for b in range(features.shape[0]):
        n_valid = int(mask[b].sum())
        pairs = hard_pairs(labels[b, :n_valid].detach().cpu().numpy(), region)
        if not pairs:
            per_video.append(features.sum() * 0.0)
            continue
        idx = torch.tensor(pairs, device=features.device)  # (P, 2)
        dist = (unit[b, idx[:, 0]] - unit[b, idx[:, 1]]).norm(dim=-1)  # (P,)
        per_video.append(torch.clamp(margin - dist, min=0.0).sum())
    return torch.stack(per_video).mean()


def balanced_segment_indices(labels: np.ndarray, n_segments: int, min_minority: int,
                             rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of `n_segments` steps of one video whose rarer class has >= `min_minority`
    members. A uniform draw is kept when it is balanced enough; otherwise `min_minority` steps are
    drawn from the minority class and the rest from the majority class. Draws are with replacement
    only when a pool is too small. A single-class video gets a uniform draw."""
    labels = np.asarray(labels)
    total = labels.size
    draw = rng.choice(total, size=n_segments, replace=total < n_segments)
    positive, negative = np.flatnonzero(labels > 0.5), np.flatnonzero(labels <= 0.5)
    if positive.size == 0 or negative.size == 0:
        return np.sort(draw)
    n_pos = int((labels[draw] > 0.5).sum())
    if min(n_pos, n_segments - n_pos) >= min_minority:
        return np.sort(draw)
    minority, majority = (positive, negative) if n_pos < n_segments - n_pos else (negative, positive)
    picked = np.concatenate([_draw(minority, min_minority, rng), _draw(majority, n_segments - min_minority, rng)])
    return np.sort(picked)


def _draw(pool: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    return rng.choice(pool, size=count, replace=pool.size < count)
