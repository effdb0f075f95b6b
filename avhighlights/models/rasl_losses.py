"""RASL losses (spec §4, Eqs. 6-11): L1 reconstruction, the k-point contrastive loss, symmetric
contrastive learning (SCL) between the aligned audio and visual codes, and the 50 % masked
auxiliary reconstruction.

SCL interpretation ([I], the printed Eq. 9 takes logs of raw dot products): symmetric InfoNCE
over the N x N similarity of L2-normalised r^a_i, r^v_j (codes flattened per step) with logit
scale exp(Gamma) (`gamma_mode="exp"`, CLIP style) or Gamma itself (`gamma_mode="multiplier"`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from avhighlights.core.errors import ConfigError
from avhighlights.models.rasl_net import RankProjections

GAMMA_MODES = ("exp", "multiplier")


def reconstruction_l1(target: torch.Tensor, recon: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over every element: L_e = |rho - D(s r)|."""
    return (target - recon).abs().mean()


def rank_indices(s: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k and bottom-k step indices of s (B, N), each ordered by ascending s: (B, k), (B, k)."""
    order = torch.argsort(s, dim=1)  # ascending
    return order[:, -k:], order[:, :k]


def kpoint_eta(s: torch.Tensor, z: torch.Tensor, proj: RankProjections, k: int, contrast: bool = True) -> torch.Tensor:
    """eta (B,) = (1/k) sum_i s_hat_i [1 - cos(LN(W_hat_i z_hat_i), LN(W_check_i z_check_i))];
    without `contrast` (the ablation) eta = mean of the top-k activations."""
    top, bottom = rank_indices(s, k)
    s_top = torch.gather(s, 1, top)  # (B, k)
    if not contrast:
        return s_top.mean(dim=1)
    z_top = torch.gather(z, 1, top.unsqueeze(-1).expand(-1, -1, z.shape[-1]))  # (B, k, c)
    z_bottom = torch.gather(z, 1, bottom.unsqueeze(-1).expand(-1, -1, z.shape[-1]))  # (B, k, c)
    p_top = proj.norm(torch.einsum("kij,bkj->bki", proj.top, z_top))  # (B, k, c)
    p_bottom = proj.norm(torch.einsum("kij,bkj->bki", proj.bottom, z_bottom))  # (B, k, c)
    return (s_top * (1.0 - F.cosine_similarity(p_top, p_bottom, dim=-1))).mean(dim=1)


def kpoint_loss(s: torch.Tensor, z: torch.Tensor, proj: RankProjections, k: int, contrast: bool = True) -> torch.Tensor:
    """L_r = -log sigmoid(eta) = softplus(-eta), averaged over the batch."""
    return F.softplus(-kpoint_eta(s, z, proj, k, contrast)).mean()


def logit_scale(gamma: torch.Tensor, mode: str) -> torch.Tensor:
    if mode not in GAMMA_MODES:
        raise ConfigError(f"rasl: gamma_mode must be one of {GAMMA_MODES}, got {mode!r}")
    return gamma.exp() if mode == "exp" else gamma


def scl_loss(r_audio: torch.Tensor, r_visual: torch.Tensor, gamma: torch.Tensor, mode: str = "exp") -> torch.Tensor:
    """Symmetric InfoNCE between time-aligned codes (B, N, c): positives are the same step."""
    a = F.normalize(r_audio.flatten(2), dim=-1)  # (B, N, c)
    v = F.normalize(r_visual.flatten(2), dim=-1)  # (B, N, c)
    logits = logit_scale(gamma, mode) * a @ v.transpose(1, 2)  # (B, N, N)
    target = torch.arange(logits.shape[1], device=logits.device).expand(logits.shape[0], -1)  # (B, N)
    forward = F.cross_entropy(logits.transpose(1, 2), target)  # audio -> visual over rows
    backward = F.cross_entropy(logits, target)  # visual -> audio
    return 0.5 * (forward + backward)


def random_step_mask(batch: int, n_steps: int, ratio: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """(B, N) bool, True on kept steps: round(ratio * N) steps per sample masked, drawn without replacement."""
    n_masked = int(round(ratio * n_steps))
    scores = torch.rand(batch, n_steps, generator=generator)
    masked = torch.argsort(scores, dim=1)[:, :n_masked]  # (B, n_masked)
    keep = torch.ones(batch, n_steps, dtype=torch.bool)
    keep.scatter_(1, masked, False)
    return keep
