"""RASL network (Li, Sun, Xiao, TIP 2024; spec §4): per modality a single-head self-attention with
residual, a time-preserving convolutional autoencoder over the feature axis (the N time steps of
a window are the conv channels, depthwise, so every step keeps its own code r_i), a conv psi and a
bias-free FC giving the activation s_i, plus the rank-indexed projections of the k-point loss and
the learnable SCL scale Gamma.

Autoencoder default (spec's [I] recommendation): 3 depthwise Conv1d over the feature axis,
kernel 3, stride 2, padding 1 (d -> d/2 -> d/4 -> d/8), ReLU after each; decoder: the mirror
ConvTranspose1d (output_padding 1), ReLU after each (the paper's "each followed by ReLU").
With `per_step_kernels=False` every conv is one kernel shared by all steps (still time-preserving):
per-step kernels and biases make s depend on the position inside the window, not only on content.

Activation (`activation`, ACTIVATIONS): the paper's Eq. 4 is the bias-free FC itself ("linear", the
`paper` recipe); "sigmoid" bounds s_i to (0, 1), the paper's own reading of s as "the k activations with
the highest probabilities" (Sec. III-C). Unbounded, the k-point loss is solved by inflating the scale of s
(eta grows with s whatever the ranking); bounded, L_r can only fall by ranking the steps.
"softmax_time" makes the steps compete: s = N x softmax over the window of FC(z) (mean 1, so D's input keeps
r's scale), so raising the top-k lowers the others; a sigmoid s can instead saturate at 1 on every step (Eq. 8
has no term that lowers the bottom-k), which with shared kernels is a collapse. "standardised_sigmoid"
standardises FC(z) over the window first: s keeps a fixed spread, so only the order of the steps is learnt.

Kernel init (`kernel_init`): one shared 3-tap kernel per layer with PyTorch's default init often starts (or
ends) with a closed ReLU on every output, r = 0 on every step and s constant (a dead encoder: L_e = L_au and
SCL = ln N); "positive" starts the kernels at |w| with zero bias (the features are non-negative).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from avhighlights.core.errors import ConfigError

AE_LAYERS = 3
KERNEL_INITS = ("default", "positive")  # the conv kernels' initialisation (_axis_conv)


def time_softmax(logits: torch.Tensor) -> torch.Tensor:
    """N x softmax over the window's steps of (B, N) logits: s_i in (0, N) with mean 1 per window."""
    return logits.shape[-1] * torch.softmax(logits, dim=-1)


def standardised_sigmoid(logits: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """sigmoid of the (B, N) logits standardised over the window's steps: s_i in (0, 1), its spread fixed, so
    neither the scale of FC nor a shift common to every step can change the loss; only the steps' order can."""
    centred = logits - logits.mean(dim=-1, keepdim=True)
    return torch.sigmoid(centred / (centred.std(dim=-1, keepdim=True) + eps))


ACTIVATIONS = {"linear": lambda x: x, "sigmoid": torch.sigmoid, "softmax_time": time_softmax,
               "standardised_sigmoid": standardised_sigmoid}  # s = ACTIVATIONS[name](FC(z))


def activation_fn(name: str):
    if name not in ACTIVATIONS:
        raise ConfigError(f"rasl: activation must be one of {sorted(ACTIVATIONS)}, got {name!r}")
    return ACTIVATIONS[name]


class SingleHeadSelfAttention(nn.Module):
    """rho_bar = rho + softmax(Q K^T / sqrt(d)) V W^O with W^Q, W^K, W^V, W^O in R^{d x d} (Eqs. 1-2)."""

    def __init__(self, dim: int, bias: bool = True):
        super().__init__()
        self.query, self.key, self.value, self.out = (nn.Linear(dim, dim, bias=bias) for _ in range(4))
        self.scale = 1.0 / math.sqrt(dim)

    def forward(self, rho: torch.Tensor) -> torch.Tensor:
        weights = torch.softmax(self.query(rho) @ self.key(rho).transpose(1, 2) * self.scale, dim=-1)  # (B, N, N)
        return rho + self.out(weights @ self.value(rho))  # (B, N, d)


class SharedStepConv(nn.Module):
    """A one-channel conv over the feature axis shared by every time step: (B, N, L) -> (B, N, L')."""

    def __init__(self, conv: nn.Module):
        super().__init__()
        self.conv = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x.reshape(-1, 1, x.shape[-1]))  # (B*N, 1, L')
        return out.reshape(*x.shape[:2], out.shape[-1])


def _axis_conv(n_steps: int, per_step: bool, transpose: bool = False, stride: int = 2,
               init: str = "default") -> nn.Module:
    """Kernel 3 conv over the feature axis: depthwise with the N steps as channels (`per_step`,
    each step position has its own kernel) or one kernel shared by all steps. `init="positive"`:
    |default weights| and zero bias, so that on non-negative features no ReLU starts closed (KERNEL_INITS)."""
    if init not in KERNEL_INITS:
        raise ConfigError(f"rasl: kernel_init must be one of {KERNEL_INITS}, got {init!r}")
    channels = n_steps if per_step else 1
    if transpose:
        conv = nn.ConvTranspose1d(channels, channels, 3, stride=2, padding=1, output_padding=1, groups=channels)
    else:
        conv = nn.Conv1d(channels, channels, 3, stride=stride, padding=1, groups=channels)
    if init == "positive":
        with torch.no_grad():
            conv.weight.abs_()
            conv.bias.zero_()
    return conv if per_step else SharedStepConv(conv)


def _encoder(n_steps: int, per_step: bool, init: str = "default") -> nn.Sequential:
    layers: list[nn.Module] = []
    for _ in range(AE_LAYERS):
        layers += [_axis_conv(n_steps, per_step, init=init), nn.ReLU()]
    return nn.Sequential(*layers)


def _decoder(n_steps: int, per_step: bool, init: str = "default") -> nn.Sequential:
    layers: list[nn.Module] = []
    for _ in range(AE_LAYERS):
        layers += [_axis_conv(n_steps, per_step, transpose=True, init=init), nn.ReLU()]
    return nn.Sequential(*layers)


class RASLBranch(nn.Module):
    """One modality: self-attention F, encoder E, decoder D, psi and the score FC (no bias)."""

    def __init__(self, dim: int, n_steps: int, attn_bias: bool = True, per_step_kernels: bool = True,
                 activation: str = "linear", kernel_init: str = "default"):
        super().__init__()
        self.activation = activation_fn(activation)
        if dim % (2**AE_LAYERS):
            raise ConfigError(f"rasl: feature width {dim} must be divisible by {2**AE_LAYERS} (3 stride-2 convs)")
        self.code_dim = dim // 2**AE_LAYERS
        self.attention = SingleHeadSelfAttention(dim, attn_bias)
        self.encoder = _encoder(n_steps, per_step_kernels, kernel_init)
        self.decoder = _decoder(n_steps, per_step_kernels, kernel_init)
        self.psi = _axis_conv(n_steps, per_step_kernels, stride=1, init=kernel_init)
        self.score = nn.Linear(self.code_dim, 1, bias=False)

    def encode(self, rho: torch.Tensor) -> torch.Tensor:
        """r = E(F(rho)): (B, N, d) -> (B, N, d / 8)."""
        return self.encoder(self.attention(rho))

    def activations(self, r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z = psi(r) (B, N, c) and s = activation(FC(z)) (B, N)."""
        z = self.psi(r)
        return z, self.activation(self.score(z).squeeze(-1))

    def decode(self, s: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        """D(s * r): (B, N), (B, N, c) -> (B, N, d)."""
        return self.decoder(s.unsqueeze(-1) * r)

    def forward(self, rho: torch.Tensor) -> dict[str, torch.Tensor]:
        r = self.encode(rho)
        z, s = self.activations(r)
        return {"r": r, "z": z, "s": s}


class RankProjections(nn.Module):
    """Per-rank projections W_hat_i, W_check_i (k, c, c) and the LayerNorm of the k-point loss."""

    def __init__(self, code_dim: int, k: int):
        super().__init__()
        eye = torch.eye(code_dim).expand(k, code_dim, code_dim)
        self.top = nn.Parameter(eye.clone())  # (k, c, c)
        self.bottom = nn.Parameter(eye.clone())  # (k, c, c)
        self.norm = nn.LayerNorm(code_dim)


class RASLNet(nn.Module):
    """Both branches, the k-point projections per branch and Gamma (init 3.1)."""

    def __init__(self, dim: int, n_steps: int, k: int = 10, gamma_init: float = 3.1, attn_bias: bool = True,
                 per_step_kernels: bool = True, activation: str = "linear", kernel_init: str = "default"):
        super().__init__()
        if not 1 <= k <= n_steps // 2:
            raise ConfigError(f"rasl: k must be in 1..{n_steps // 2} for windows of {n_steps} steps, got {k}")
        self.branches = nn.ModuleDict({m: RASLBranch(dim, n_steps, attn_bias, per_step_kernels, activation,
                                                                  kernel_init)
                                       for m in ("visual", "audio")})
        code_dim = self.branches["visual"].code_dim
        self.projections = nn.ModuleDict({m: RankProjections(code_dim, k) for m in ("visual", "audio")})
        self.gamma = nn.Parameter(torch.tensor(float(gamma_init)))
        self.k = k

    def visual_scores(self, rho_v: torch.Tensor) -> torch.Tensor:
        """Inference graph: s^v (B, N) from visual windows (B, N, d)."""
        return self.branches["visual"](rho_v)["s"]
