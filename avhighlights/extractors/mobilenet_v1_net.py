"""TF-slim MobileNet-v1 (Howard et al. 2017) as a plain torch module whose state-dict keys match the
converted checkpoint in shared/weights/mobilenet_v1_025_imagenet: `features.{0..26}.{conv,bn}.*` and
`logits.{weight,bias}` (a 1x1 conv with 1001 outputs, index 0 = background).

TF "SAME" padding (asymmetric for stride 2 on even sizes), BatchNorm eps 1e-3, ReLU6, global average pool.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

BN_EPS = 1e-3
NUM_LOGITS = 1001
# (output channels at width 1.0, stride) of the 13 depthwise-separable blocks
SEPARABLE_BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1), (512, 1),
                    (512, 1), (512, 1), (1024, 2), (1024, 1))
STEM_CHANNELS = 32


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """(before, after) padding of TF "SAME" along one axis."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class ConvBN(nn.Module):
    """Conv (no bias, TF SAME padding) -> BatchNorm -> ReLU6."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, groups: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride=stride, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(c_out, eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, s = self.conv.kernel_size[0], self.conv.stride[0]
        top, bottom = same_padding(x.shape[-2], k, s)
        left, right = same_padding(x.shape[-1], k, s)
        x = F.pad(x, (left, right, top, bottom))
        return F.relu6(self.bn(self.conv(x)))


def scaled(channels: int, width: float) -> int:
    """TF-slim depth(): channels * multiplier, at least 8."""
    return max(int(channels * width), 8)


class MobileNetV1(nn.Module):
    """Input (B, 3, H, W) RGB in [-1, 1]; `forward` returns (logits (B, 1001), pooled (B, C))."""

    def __init__(self, width: float = 0.25, num_logits: int = NUM_LOGITS):
        super().__init__()
        c = scaled(STEM_CHANNELS, width)
        layers = [ConvBN(3, c, 3, 2)]
        for channels, stride in SEPARABLE_BLOCKS:
            c_out = scaled(channels, width)
            layers += [ConvBN(c, c, 3, stride, groups=c), ConvBN(c, c_out, 1, 1)]
            c = c_out
        self.features = nn.Sequential(*layers)
        self.embed_dim = c
        self.logits = nn.Conv2d(c, num_logits, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pooled = self.features(x).mean(dim=(2, 3))  # (B, C)
        logits = self.logits(pooled[:, :, None, None])[:, :, 0, 0]  # (B, 1001)
        return logits, pooled
