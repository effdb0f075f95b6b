"""Inception-v3 (ImageNet) frame features at 1 fps: `inception_v3_pool` (the raw 2048-d pool) and
`inception_v3_pca` (the YouTube-8M / Mr.HiSum recipe on top: PCA to K = 1024 dims with whitening and an optional
8-bit round-trip, see `pca.py`).

Row i covers [i * hop_s, (i + 1) * hop_s) and is computed from the frame on screen at its middle, squashed to
299x299 and normalised like torchvision's ImageNet Inception (transform_input maps it to the TF [-1, 1] range).
The network is torchvision's `inception_v3` (weights ported from TF-slim); YouTube-8M used Google's 2015 TF
graph, so its published PCA applied to these features is an approximation: fit the PCA on your own corpus
(`avhighlights pca fit`) for consistent features.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from avhighlights.core.errors import ConfigError
from avhighlights.core.types import VideoInfo
from avhighlights.extractors.base import EXTRACTORS, autocast_context
from avhighlights.extractors.pca import YT8M_DEQUANT_OFFSET, PcaParams, apply_pca, dequantize, load_pca, quantize
from avhighlights.extractors.visual import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    FrameExtractor,
    check_sha256_prefix,
    torchvision_prefix_of,
    torchvision_weights,
)
from avhighlights.extractors.weights import (
    Preprocess,
    cached_sha256,
    load_state_dict,
    resolve_weights,
)

INCEPTION_V3 = torchvision_weights(
    "inception_v3_imagenet_tv", "https://download.pytorch.org/models/inception_v3_google-0cc3c7bd.pth",
    licence="BSD-3-Clause (torchvision); Apache-2.0 (TF-slim weights); ImageNet terms apply",
    source="torchvision.models.Inception_V3_Weights.IMAGENET1K_V1 (Szegedy et al., CVPR 2016)",
    preprocess=Preprocess(IMAGENET_MEAN, IMAGENET_STD, image_size=299),
)
POOL_DIM = 2048


@dataclass(frozen=True)
class InceptionPoolConfig:
    fps: float = 1.0
    image_size: int = INCEPTION_V3.preprocess.image_size
    batch_size: int = 16
    weights_path: str | None = None
    random_init: bool = False
    seed: int = 0


@dataclass(frozen=True)
class InceptionPcaConfig(InceptionPoolConfig):
    """`pca_path`: an .npz from `avhighlights pca fit` or `avhighlights pca import-yt8m` (required)."""

    pca_path: str | None = None
    quantize: bool = False
    dequant_offset: float = YT8M_DEQUANT_OFFSET


def build_inception(random_init: bool, weights_path: str | None) -> nn.Module:
    """torchvision Inception-v3 with the classifier replaced by identity: (B, 3, H, W) -> (B, 2048)."""
    from torchvision.models import inception_v3

    net = inception_v3(weights=None, aux_logits=True, transform_input=True, init_weights=random_init)
    if not random_init:
        path = resolve_weights(INCEPTION_V3.name, weights_path)
        check_sha256_prefix(path, torchvision_prefix_of(INCEPTION_V3.filename), INCEPTION_V3.url)
        net.load_state_dict(load_state_dict(path), strict=True)
    net.fc = nn.Identity()
    return net


@EXTRACTORS.register("inception_v3_pool")
class InceptionPoolExtractor(FrameExtractor):
    """Raw 2048-d Inception-v3 pool features per frame (the input of the PCA)."""

    channels_last = True
    version = "2"  # 2: frames scaled in the decoder (PyAV swscale bilinear), not torch-resized
    Config = InceptionPoolConfig

    @property
    def dim(self) -> int:
        return POOL_DIM

    def weights_name(self) -> str:
        return INCEPTION_V3.name

    def build_net(self) -> nn.Module:
        return build_inception(self.config.random_init, self.config.weights_path)

    def frame_size(self, info: VideoInfo) -> tuple[int, int]:
        return self.config.image_size, self.config.image_size

    @torch.inference_mode()
    def pool_frames(self, frames: np.ndarray) -> np.ndarray:
        """(B, H, W, 3) uint8 -> (B, 2048)."""
        x = self.to_input(frames)  # (B, 3, H, W)
        with autocast_context(self.device):
            pooled = self.net(x)  # (B, 2048)
        return pooled.float().cpu().numpy()

    def embed_frames(self, frames: np.ndarray) -> np.ndarray:
        return self.pool_frames(frames)


@EXTRACTORS.register("inception_v3_pca")
class InceptionPcaExtractor(InceptionPoolExtractor):
    """K-d (1024 with the YouTube-8M parameters) PCA-whitened Inception-v3 features per frame."""

    version = "2"  # 2: frames scaled in the decoder (PyAV swscale bilinear), not torch-resized
    Config = InceptionPcaConfig
    runtime_fields = frozenset({"batch_size", "weights_path", "pca_path"})  # files enter by their sha256

    def __init__(self, config=None, device=None):
        super().__init__(config, device)
        self._pca: PcaParams | None = None

    @property
    def pca_path(self) -> Path:
        if self.config.pca_path is None:
            raise ConfigError("inception_v3_pca needs pca_path: an .npz with mean/components/eigenvalues, from "
                              "`avhighlights pca fit --videos DIR --out pca.npz` or `avhighlights pca import-yt8m`")
        return Path(self.config.pca_path).expanduser()

    @property
    def pca(self) -> PcaParams:
        if self._pca is None:
            self._pca = load_pca(self.pca_path)
            if self._pca.in_dim != POOL_DIM:
                raise ConfigError(f"{self.pca_path}: PCA input dim {self._pca.in_dim}, expected {POOL_DIM}")
        return self._pca

    @property
    def dim(self) -> int:
        return self.pca.n_components

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "pca_sha256": cached_sha256(self.pca_path)}

    def embed_frames(self, frames: np.ndarray) -> np.ndarray:
        """(B, H, W, 3) uint8 -> (B, K)."""
        reduced = apply_pca(self.pool_frames(frames), self.pca)  # (B, K)
        if self.config.quantize:
            reduced = dequantize(quantize(reduced), self.config.dequant_offset)
        return reduced
