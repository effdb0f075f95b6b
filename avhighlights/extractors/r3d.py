"""Clip-level 3D-CNN features, one 512-d row per 1-s step (row i covers [i, i + 1) s).

`r3d34`: Hara et al.'s 3D-ResNet-34 (Kinetics-400) with the DAViHD/Joint-VA recipe (spec §1.2): the first 16
frames of each step (a shorter step repeats its last frame), squashed to 112x112, Kinetics mean/std, classifier
removed. Our own module (`r3d_net`) loads the official `resnet-34-kinetics.pth` with strict=True.
Differences from the DAViHD code, both deliberate: steps are 1-s time spans (DAViHD cuts chunks of floor(fps)
frames, which drifts from real seconds at non-integer frame rates), and a final partial step of at least 0.25 s
gets a row (DAViHD drops an incomplete last chunk) so every extractor shares one time grid.

`r3d18_tv`: torchvision's `r3d_18` (KINETICS400_V1), the downloadable alternative, with torchvision's own
transform: resize to 128x171, centre crop 112, Kinetics mean/std, 16 frames per step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from avhighlights.extractors.base import EXTRACTORS, autocast_context
from avhighlights.extractors.r3d_net import ResNet3d, official_state_dict
from avhighlights.extractors.visual import (
    KINETICS_MEAN,
    KINETICS_STD,
    ClipExtractor,
    center_crop,
    check_sha256_prefix,
    torchvision_prefix_of,
    torchvision_weights,
)
from avhighlights.extractors.weights import (
    Preprocess,
    WeightSpec,
    load_state_dict,
    register_weights,
    resolve_weights,
)

R3D34_KINETICS = register_weights(WeightSpec(
    name="r3d34_kinetics",
    filename="resnet-34-kinetics.pth",
    url="https://drive.google.com/drive/folders/1zvl89AgFAApbH0At-gMuZSeQB_LpNP-M",
    sha256=None,
    manual=True,
    licence="MIT (kenshohara/3D-ResNets-PyTorch)",
    source="Hara et al., Can Spatiotemporal 3D CNNs Retrace the History of 2D CNNs and ImageNet?, CVPR 2018; "
           "github.com/kenshohara/3D-ResNets-PyTorch (pre-2019 release, shortcut B)",
    notes="published only as a Google Drive folder without a hash: unverified; fetch it by hand and pass "
          "weights_path or put it in $AVH_WEIGHTS_DIR. A {'state_dict', 'arch', 'epoch', 'optimizer'} dict whose "
          "keys carry the DataParallel prefix 'module.'",
    preprocess=Preprocess(KINETICS_MEAN, KINETICS_STD, image_size=112),
))
R3D18_TV = torchvision_weights(
    "r3d18_kinetics_tv", "https://download.pytorch.org/models/r3d_18-b3b3357e.pth",
    licence="BSD-3-Clause (torchvision); Kinetics-400 terms apply",
    source="torchvision.models.video.R3D_18_Weights.KINETICS400_V1 (Tran et al., CVPR 2018)",
    preprocess=Preprocess(KINETICS_MEAN, KINETICS_STD, image_size=112),  # after resize to 128x171, centre crop
)


@dataclass(frozen=True)
class R3D34Config:
    chunk_s: float = 1.0
    clip_frames: int = 16
    image_size: int = R3D34_KINETICS.preprocess.image_size
    batch_size: int = 4
    weights_path: str | None = None
    random_init: bool = False
    seed: int = 0


@dataclass(frozen=True)
class R3D18Config:
    chunk_s: float = 1.0
    clip_frames: int = 16
    resize_hw: tuple[int, int] = (128, 171)
    crop_size: int = R3D18_TV.preprocess.image_size
    batch_size: int = 4
    weights_path: str | None = None
    random_init: bool = False
    seed: int = 0


class Kinetics3dExtractor(ClipExtractor):
    """`clip_frames`-frame clips per step -> Kinetics-normalised (B, 3, T, H, W) -> 512-d rows."""

    @property
    def dim(self) -> int:
        return 512

    def prepare(self, clips: np.ndarray) -> np.ndarray:
        """Resized (B, T, H, W, 3) uint8 clips -> network-size clips (crop when needed)."""
        return clips

    @torch.inference_mode()
    def embed_clips(self, clips: np.ndarray) -> np.ndarray:
        """(B, T, H, W, 3) uint8 -> (B, 512)."""
        x = self.to_input(self.prepare(clips))  # (B, T, 3, H, W)
        x = x.transpose(1, 2).contiguous()  # (B, 3, T, H, W)
        with autocast_context(self.device):
            features = self.net(x)  # (B, 512)
        return features.float().cpu().numpy()


@EXTRACTORS.register("r3d34")
class R3D34Extractor(Kinetics3dExtractor):
    """512-d Hara 3D-ResNet-34 (Kinetics-400) features per 1-s step."""

    version = "2"  # 2: frames scaled in the decoder (PyAV swscale bilinear), not torch-resized
    Config = R3D34Config

    def weights_name(self) -> str:
        return R3D34_KINETICS.name

    def build_net(self) -> ResNet3d:
        net = ResNet3d()
        if not self.config.random_init:
            path = resolve_weights(R3D34_KINETICS.name, self.config.weights_path)
            net.load_state_dict(official_state_dict(load_state_dict(path)), strict=True)
        return net

    def clip_size(self) -> tuple[int, int]:
        return self.config.image_size, self.config.image_size


@EXTRACTORS.register("r3d18_tv")
class R3D18TorchvisionExtractor(Kinetics3dExtractor):
    """512-d torchvision r3d_18 (KINETICS400_V1) features per 1-s step."""

    version = "2"  # 2: frames scaled in the decoder (PyAV swscale bilinear), not torch-resized
    Config = R3D18Config

    def weights_name(self) -> str:
        return R3D18_TV.name

    def build_net(self) -> nn.Module:
        from torchvision.models.video import r3d_18

        net = r3d_18(weights=None)
        if not self.config.random_init:
            path = resolve_weights(R3D18_TV.name, self.config.weights_path)
            check_sha256_prefix(path, torchvision_prefix_of(R3D18_TV.filename), R3D18_TV.url)
            net.load_state_dict(load_state_dict(path), strict=True)
        net.fc = nn.Identity()
        return net

    def clip_size(self) -> tuple[int, int]:
        return self.config.resize_hw

    def prepare(self, clips: np.ndarray) -> np.ndarray:
        return center_crop(clips, self.config.crop_size)
