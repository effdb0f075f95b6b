"""`swin`: timm Swin Transformer pooled features (`num_classes=0`) per frame; default Swin-B (1024-d), the RASL
visual encoder (spec §4: 5 fps -> `fps=5.0`, hop 0.2 s); 1 fps otherwise.

Row i covers [i * hop_s, (i + 1) * hop_s) and is computed from the frame on screen at its middle, with timm's
evaluation transform: shorter side resized to image_size / crop_pct (bilinear with antialiasing here, bicubic in
timm), centre crop image_size, ImageNet mean/std. Weights are the official Microsoft releases (the URLs timm
uses), read with `weights_only=True` and converted by timm's own `checkpoint_filter_fn`; timm never touches the
network. `embed_dim`/`depths`/`num_heads` override the variant's architecture (tiny random models for tests).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from avhighlights.core.errors import ConfigError
from avhighlights.core.types import VideoInfo
from avhighlights.extractors.base import EXTRACTORS, autocast_context
from avhighlights.extractors.visual import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    FrameExtractor,
    center_crop,
    cover_size,
)
from avhighlights.extractors.weights import Preprocess, WeightSpec, load_state_dict, register_weights, resolve_weights

_RELEASES = "https://github.com/SwinTransformer/storage/releases/download/"
_SWIN_FILES = {
    "swin_tiny_patch4_window7_224": "v1.0.0/swin_tiny_patch4_window7_224.pth",
    "swin_small_patch4_window7_224": "v1.0.8/swin_small_patch4_window7_224_22kto1k_finetune.pth",
    "swin_base_patch4_window7_224": "v1.0.0/swin_base_patch4_window7_224_22kto1k.pth",
    "swin_large_patch4_window7_224": "v1.0.0/swin_large_patch4_window7_224_22kto1k.pth",
}
SWIN_WEIGHTS = {
    variant: register_weights(WeightSpec(
        name=variant,
        filename=file.split("/")[-1],
        url=_RELEASES + file,
        sha256=None,
        licence="MIT (microsoft/Swin-Transformer)",
        source="Liu et al., Swin Transformer, ICCV 2021; github.com/microsoft/Swin-Transformer (timm's pretrained "
               "URL for this variant)",
        notes="no sha256 published: unverified; the file's own hash is the cache identity",
        preprocess=Preprocess(IMAGENET_MEAN, IMAGENET_STD, image_size=224),
    ))
    for variant, file in _SWIN_FILES.items()
}


@dataclass(frozen=True)
class SwinConfig:
    variant: str = "swin_base_patch4_window7_224"
    fps: float = 1.0
    image_size: int = SWIN_WEIGHTS["swin_base_patch4_window7_224"].preprocess.image_size
    crop_pct: float = 0.9
    batch_size: int = 16
    embed_dim: int | None = None
    depths: tuple[int, ...] | None = None
    num_heads: tuple[int, ...] | None = None
    weights_path: str | None = None
    random_init: bool = False
    seed: int = 0


def _arch_overrides(c: SwinConfig) -> dict:
    fields = {"embed_dim": c.embed_dim, "depths": c.depths, "num_heads": c.num_heads}
    return {key: value for key, value in fields.items() if value is not None}


@EXTRACTORS.register("swin")
class SwinExtractor(FrameExtractor):
    """Pooled Swin features (1024-d for Swin-B) per frame at `fps`."""

    version = "2"  # 2: frames scaled in the decoder (PyAV swscale bilinear), not torch-resized
    Config = SwinConfig

    def __init__(self, config=None, device=None):
        super().__init__(config, device)
        if self.config.variant not in SWIN_WEIGHTS:
            raise ConfigError(f"unknown swin variant {self.config.variant!r}; choose from {sorted(SWIN_WEIGHTS)}")

    @property
    def dim(self) -> int:
        return int(self.net.num_features)

    def weights_name(self) -> str:
        return self.config.variant

    def build_net(self) -> nn.Module:
        import timm
        from timm.models.swin_transformer import checkpoint_filter_fn

        c = self.config
        net = timm.create_model(c.variant, pretrained=False, num_classes=0, img_size=c.image_size,
                                **_arch_overrides(c))
        if not c.random_init:
            state = load_state_dict(resolve_weights(c.variant, c.weights_path))
            state = {k: v for k, v in checkpoint_filter_fn(state, net).items() if not k.startswith("head.fc.")}
            net.load_state_dict(state, strict=True)
        return net

    def frame_size(self, info: VideoInfo) -> tuple[int, int]:
        return cover_size(info, round(self.config.image_size / self.config.crop_pct))

    @torch.inference_mode()
    def embed_frames(self, frames: np.ndarray) -> np.ndarray:
        """(B, H, W, 3) uint8 (shorter side resized) -> (B, dim)."""
        crop = center_crop(frames, self.config.image_size)  # (B, S, S, 3)
        x = self.to_input(crop)  # (B, 3, S, S)
        with autocast_context(self.device):
            pooled = self.net(x)  # (B, dim)
        return pooled.float().cpu().numpy()
