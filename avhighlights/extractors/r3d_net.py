"""3D-ResNet (Hara, Kataoka, Satoh, "Can Spatiotemporal 3D CNNs Retrace the History of 2D CNNs and ImageNet?",
CVPR 2018; github.com/kenshohara/3D-ResNets-PyTorch, the original `models/resnet.py`) with the parameter names
of the official Kinetics-400 checkpoints (`resnet-34-kinetics.pth`): `conv1`, `bn1`, `layer1..4.<i>.{conv1,bn1,
conv2,bn2}`, shortcut type B `layer<k>.0.downsample.{0,1}` (1x1x1 conv + BN) and `fc` (400 x 512).

conv1 is 7x7x7 with stride (1, 2, 2) and padding 3, followed by a 3x3x3 stride-2 max-pool. The classifier `fc`
is kept so the official file loads with strict=True; `forward` returns the 512-d pooled features and
`classify` the Kinetics logits.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from avhighlights.core.errors import CheckpointError

RESNET34_LAYERS = (3, 4, 6, 3)
STAGE_PLANES = (64, 128, 256, 512)
KINETICS_CLASSES = 400
DATA_PARALLEL_PREFIX = "module."


def conv3x3x3(c_in: int, c_out: int, stride: int = 1) -> nn.Conv3d:
    return nn.Conv3d(c_in, c_out, kernel_size=3, stride=stride, padding=1, bias=False)


class BasicBlock3d(nn.Module):
    """Two 3x3x3 conv-BN layers with an identity or (type B) conv-BN shortcut."""

    def __init__(self, c_in: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = conv3x3x3(c_in, planes, stride)
        self.bn1 = nn.BatchNorm3d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3x3(planes, planes)
        self.bn2 = nn.BatchNorm3d(planes)
        self.downsample = None
        if stride != 1 or c_in != planes:
            self.downsample = nn.Sequential(nn.Conv3d(c_in, planes, kernel_size=1, stride=stride, bias=False),
                                            nn.BatchNorm3d(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + residual)


class ResNet3d(nn.Module):
    """Input (B, 3, T, H, W) normalised clips (16 x 112 x 112 for the Kinetics models)."""

    def __init__(self, layers: tuple[int, ...] = RESNET34_LAYERS, num_classes: int = KINETICS_CLASSES):
        super().__init__()
        self.conv1 = nn.Conv3d(3, 64, kernel_size=7, stride=(1, 2, 2), padding=(3, 3, 3), bias=False)
        self.bn1 = nn.BatchNorm3d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool3d(kernel_size=3, stride=2, padding=1)
        c_in = 64
        for stage, (planes, n_blocks) in enumerate(zip(STAGE_PLANES, layers, strict=True), 1):
            stride = 1 if stage == 1 else 2
            blocks = [BasicBlock3d(c_in, planes, stride)] + [BasicBlock3d(planes, planes) for _ in range(n_blocks - 1)]
            setattr(self, f"layer{stage}", nn.Sequential(*blocks))
            c_in = planes
        self.avgpool = nn.AdaptiveAvgPool3d(1)  # = the original AvgPool3d((1, 4, 4)) for 16 x 112 x 112 input
        self.fc = nn.Linear(c_in, num_classes)
        self.embed_dim = c_in

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) -> (B, 512) pooled features (the input of the removed classifier)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # (B, 64, T/2, H/4, W/4)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))  # (B, 512, T/16, H/32, W/32)
        return self.avgpool(x).flatten(1)  # (B, 512)

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) -> (B, 400) Kinetics logits."""
        return self.fc(self.forward(x))


def official_state_dict(loaded: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The checkpoint's tensors with the DataParallel `module.` prefix removed."""
    if not loaded:
        raise CheckpointError("empty 3D-ResNet state dict")
    return {k.removeprefix(DATA_PARALLEL_PREFIX): v for k, v in loaded.items()}
