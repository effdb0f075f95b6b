"""Dense optical flow between consecutive frames with torchvision's RAFT (Teed & Deng, ECCV 2020), for the I3D flow
stream.

Why RAFT: v-iashin/video_features, the library UMT extracted its I3D features with (UMT issue #7), computes the flow
with RAFT (the authors' `raft-sintel.pth`, 20 refinement iterations) in its current version; in late 2021 its default
was PWC-Net (also Sintel), since removed there. TV-L1, the flow of the I3D paper, needs opencv-contrib, which this
project does not install; RAFT is on torchvision with published weights. `raft_large` with
`Raft_Large_Weights.C_T_SKHT_V1` is the authors' Sintel checkpoint ported by torchvision (the one video_features
loads); `raft_small` (`Raft_Small_Weights.C_T_V2`) is about 5x smaller for CPUs (see bench/results/bridges.md).

Frames go in as uint8 RGB, are scaled to [-1, 1] (RAFT's input range), replicate-padded to a multiple of 8 (RAFT's
stride) and the flow, in pixels of the given frames, is cropped back to the frame size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from avhighlights.core.errors import ConfigError
from avhighlights.extractors.visual import check_sha256_prefix, torchvision_prefix_of, torchvision_weights
from avhighlights.extractors.weights import WeightSpec, load_state_dict, resolve_weights, weights_identity

RAFT_STRIDE = 8
_LICENCE = "BSD-3-Clause (torchvision; RAFT code BSD-3-Clause, princeton-vl/RAFT)"
RAFT_LARGE_SINTEL = torchvision_weights(
    "raft_large_sintel_tv", "https://download.pytorch.org/models/raft_large_C_T_SKHT_V1-0b8c9e55.pth",
    licence=_LICENCE,
    source="torchvision.models.optical_flow.Raft_Large_Weights.C_T_SKHT_V1: the RAFT authors' Sintel checkpoint "
           "(raft-sintel.pth, the one v-iashin/video_features uses), ported by torchvision",
)
RAFT_SMALL = torchvision_weights(
    "raft_small_tv", "https://download.pytorch.org/models/raft_small_C_T_V2-01064c6d.pth",
    licence=_LICENCE,
    source="torchvision.models.optical_flow.Raft_Small_Weights.C_T_V2 (FlyingChairs + FlyingThings3D)",
)


@dataclass(frozen=True)
class FlowModel:
    """A registered RAFT variant: its torchvision builder and weights."""

    build: Callable[[], nn.Module]
    weights: WeightSpec


def _raft_large() -> nn.Module:
    from torchvision.models.optical_flow import raft_large

    return raft_large(weights=None, progress=False)


def _raft_small() -> nn.Module:
    from torchvision.models.optical_flow import raft_small

    return raft_small(weights=None, progress=False)


FLOW_MODELS = {
    "raft_large": FlowModel(_raft_large, RAFT_LARGE_SINTEL),
    "raft_small": FlowModel(_raft_small, RAFT_SMALL),
}


def flow_model(name: str) -> FlowModel:
    if name not in FLOW_MODELS:
        raise ConfigError(f"unknown flow model {name!r}; choose one of {sorted(FLOW_MODELS)}")
    return FLOW_MODELS[name]


def pad_to_stride(x: torch.Tensor, stride: int = RAFT_STRIDE) -> tuple[torch.Tensor, tuple[int, int]]:
    """Replicate-pad (N, C, H, W) at the bottom/right to multiples of `stride`; returns (padded, (H, W))."""
    h, w = x.shape[-2:]
    pad_h, pad_w = (-h) % stride, (-w) % stride
    return (F.pad(x, (0, pad_w, 0, pad_h), mode="replicate") if pad_h or pad_w else x), (h, w)


class RaftFlow:
    """Flow between frame k and k + 1 of a (N + 1, H, W, 3) uint8 stack -> (N, 2, H, W) float32 pixels (x, y)."""

    def __init__(self, model: str, iters: int, device: torch.device, batch_size: int = 8,
                 weights_path: str | None = None, random_init: bool = False, seed: int = 0):
        self.spec = flow_model(model)
        self.iters, self.device, self.batch_size = iters, device, max(1, batch_size)
        self.weights_path, self.random_init, self.seed = weights_path, random_init, seed
        self._net: nn.Module | None = None

    @property
    def weights(self) -> WeightSpec:
        return self.spec.weights

    def weights_sha256(self) -> str:
        return weights_identity(self.weights.name, self.weights_path, self.random_init, self.seed)

    @property
    def net(self) -> nn.Module:
        if self._net is None:
            torch.manual_seed(self.seed)
            net = self.spec.build()
            if not self.random_init:
                path = resolve_weights(self.weights.name, self.weights_path)
                check_sha256_prefix(path, torchvision_prefix_of(self.weights.filename), self.weights.url)
                net.load_state_dict(load_state_dict(path), strict=True)
            self._net = net.eval().to(self.device)
        return self._net

    @torch.inference_mode()
    def __call__(self, frames: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(frames)).to(self.device).permute(0, 3, 1, 2).float()
        x, (h, w) = pad_to_stride(x * (2.0 / 255.0) - 1.0)  # (N + 1, 3, H', W') in [-1, 1]
        flows = []
        for lo in range(0, x.shape[0] - 1, self.batch_size):
            hi = min(lo + self.batch_size, x.shape[0] - 1)
            flows.append(self.net(x[lo:hi], x[lo + 1:hi + 1], num_flow_updates=self.iters)[-1])  # (b, 2, H', W')
        return torch.cat(flows)[..., :h, :w].float()
