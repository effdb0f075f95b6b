"""`mobilenet_v1_025`: TF-slim MobileNet-v1 0.25 at 128x128 (ImageNet top-1 about 41.5 %), the smallest real
ImageNet classifier available offline, one frame per grid step (1 fps by default).

Row layout (dim 256 with the default `with_probabilities=False`): columns [0, 256) are the globally pooled
features; with `with_probabilities=True` columns [256, 1257) hold the 1001 softmax class probabilities
(index 0 = background, index k = `imagenet_classes()[k - 1]`). Row i covers [i * hop_s, (i + 1) * hop_s) and
is computed from the frame on screen at the middle of that span. Frames are squashed to 128x128 and scaled to
[-1, 1] (the TF-slim "inception" preprocessing).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from avhighlights.core.types import VideoInfo
from avhighlights.extractors.base import EXTRACTORS, autocast_context
from avhighlights.extractors.mobilenet_v1_net import MobileNetV1
from avhighlights.extractors.visual import FrameExtractor
from avhighlights.extractors.weights import (
    Preprocess,
    PublishedArtefact,
    WeightSpec,
    load_state_dict,
    register_weights,
    resolve_weights,
)

_SOURCE = ("Howard et al., MobileNets, 2017; TF-slim release mobilenet_v1_0.25_128 (tensorflow/models "
           "research/slim), converted to a torch state dict (shared/weights/mobilenet_v1_025_imagenet/SOURCES.md)")
_TFJS_REPO = "https://raw.githubusercontent.com/shivangidas/image-classifier/964d5727ed1738b73581ac9c1e491eed816515e2/"
MOBILENET_V1_025 = register_weights(WeightSpec(
    name="mobilenet_v1_025_imagenet",
    filename="mobilenet_v1_025_imagenet_tfslim.pt",
    url="",  # nobody publishes the converted file: see converted_from
    sha256="cb20737d767c8745b7eaae9203591f2e82ccc7c210a4cd6963621b668fd496f5",
    size_bytes=1_956_305,
    licence="Apache-2.0 (TF-slim weights)",
    source=_SOURCE,
    notes="a torch state dict converted from the TF.js export of Google's TF-slim mobilenet_v1_0.25_128 (every "
          "tensor byte-identical to the official frozen graph in http://download.tensorflow.org/models/"
          "mobilenet_v1_2018_08_02/mobilenet_v1_0.25_128.tgz, whose sha256 is not published); torch.save embeds "
          "the file name, so a re-conversion under another name has another sha256",
    preprocess=Preprocess(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), image_size=128),  # TF-slim: [-1, 1]
    converted_from=PublishedArtefact(
        url=_TFJS_REPO + "model/group1-shard1of1",
        sha256="ff03725b0db888501b3ca76aa31c6c4b015c6afc944f08fea8a4ec0d4c043670",
        convert=f"put that shard and {_TFJS_REPO}model/weights_manifest.json (sha256 "
                "eb0c332141deab95517b8b9e241b4f86a43612f2cd2cd174690d0b68b73d30a7) in one folder, run `python3 -m "
                "avhighlights.extractors.mobilenet_v1_convert weights_manifest.json --out "
                "mobilenet_v1_025_imagenet_tfslim.pt`, then `avhighlights weights import "
                "mobilenet_v1_025_imagenet_tfslim.pt`",
    ),
))
IMAGENET_CLASSES = register_weights(WeightSpec(
    name="imagenet_classes",
    filename="imagenet_classes.json",
    url="https://raw.githubusercontent.com/shivangidas/image-classifier/964d5727ed1738b73581ac9c1e491eed816515e2/"
        "mobilenet/imagenet_classes.json",
    sha256="b2f00b423f6d94e7b1c2b107e46e337aa6f370b1792c7abd3dacc5b015d53724",
    size_bytes=35_556,
    licence="Apache-2.0 (tensorflow/tfjs-models)",
    source="tensorflow/tfjs-models mobilenet imagenet_classes",
))


@functools.lru_cache(maxsize=4)
def imagenet_classes(path: str | Path | None = None) -> tuple[str, ...]:
    """The 1000 ImageNet class names; logit k (k >= 1) of the 1001-way head is class k - 1."""
    with open(resolve_weights(IMAGENET_CLASSES.name, path)) as handle:
        names = json.load(handle)
    return tuple(names[str(i)] for i in range(len(names)))


@dataclass(frozen=True)
class MobileNetV1Config:
    fps: float = 1.0
    image_size: int = MOBILENET_V1_025.preprocess.image_size
    width: float = 0.25
    with_probabilities: bool = False
    batch_size: int = 32
    weights_path: str | None = None
    random_init: bool = False
    seed: int = 0


@EXTRACTORS.register("mobilenet_v1_025")
class MobileNetV1Extractor(FrameExtractor):
    """256-d pooled MobileNet-v1 0.25 features (+ 1001 class probabilities) per frame."""

    channels_last = True
    version = "2"  # 2: frames scaled in the decoder (PyAV swscale bilinear), not torch-resized
    Config = MobileNetV1Config

    @property
    def dim(self) -> int:
        return self.net.embed_dim + (self.net.logits.out_channels if self.config.with_probabilities else 0)

    def weights_name(self) -> str:
        return MOBILENET_V1_025.name

    def weight_names(self) -> tuple[str, ...]:
        return MOBILENET_V1_025.name, IMAGENET_CLASSES.name  # the class names label the probabilities

    def build_net(self) -> MobileNetV1:
        net = MobileNetV1(width=self.config.width)
        if not self.config.random_init:
            path = resolve_weights(MOBILENET_V1_025.name, self.config.weights_path)
            net.load_state_dict(load_state_dict(path), strict=True)
        return net

    def frame_size(self, info: VideoInfo) -> tuple[int, int]:
        return self.config.image_size, self.config.image_size

    @torch.inference_mode()
    def embed_frames(self, frames: np.ndarray) -> np.ndarray:
        """(B, H, W, 3) uint8 frames -> (B, dim) rows."""
        x = self.to_input(frames)  # (B, 3, H, W) in [-1, 1]
        with autocast_context(self.device):
            logits, pooled = self.net(x)  # (B, 1001), (B, 256)
        parts = [pooled.float()]
        if self.config.with_probabilities:
            parts.append(torch.softmax(logits.float(), dim=1))
        return torch.cat(parts, dim=1).cpu().numpy()
