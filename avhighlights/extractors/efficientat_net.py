"""EfficientAT `mn` audio tagger (Schmid et al., ICASSP 2023): MobileNetV3-large layout with channel SE,
written from the published architecture so that `mn04_as_mAP_432.pt` loads with strict=True (312 keys).

Parameter names follow fschmid56/EfficientAT: `features.{i}.block.{j}...`, SE as
`block.2.conc_se_layers.0.fc1/fc2`, head `classifier.2` (384->512) and `classifier.5` (512->527).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
import torchaudio
from torch import nn

# MobileNetV3-large: (kernel, expanded, out, use_se, activation, stride) for the 15 inverted residual blocks.
MOBILENETV3_LARGE = (
    (3, 16, 16, False, "RE", 1), (3, 64, 24, False, "RE", 2), (3, 72, 24, False, "RE", 1),
    (5, 72, 40, True, "RE", 2), (5, 120, 40, True, "RE", 1), (5, 120, 40, True, "RE", 1),
    (3, 240, 80, False, "HS", 2), (3, 200, 80, False, "HS", 1), (3, 184, 80, False, "HS", 1),
    (3, 184, 80, False, "HS", 1), (3, 480, 112, True, "HS", 1), (3, 672, 112, True, "HS", 1),
    (5, 672, 160, True, "HS", 2), (5, 960, 160, True, "HS", 1), (5, 960, 160, True, "HS", 1),
)
ACTIVATIONS = {"RE": nn.ReLU, "HS": nn.Hardswish}
BatchNorm = partial(nn.BatchNorm2d, eps=0.001, momentum=0.01)


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round to a multiple of `divisor`, never more than 10% below `value` (MobileNet rule)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def conv_bn_act(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1,
                activation: type[nn.Module] | None = None) -> nn.Sequential:
    layers = [nn.Conv2d(c_in, c_out, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False), BatchNorm(c_out)]
    if activation is not None:
        layers.append(activation())
    return nn.Sequential(*layers)


class SqueezeExcitation(nn.Module):
    """Channel SE: mean over (freq, time) -> fc1 -> ReLU -> fc2 -> sigmoid -> rescale."""

    def __init__(self, channels: int, squeeze: int):
        super().__init__()
        self.fc1 = nn.Linear(channels, squeeze)
        self.fc2 = nn.Linear(squeeze, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, F, T)
        scale = x.mean(dim=(2, 3))  # (B, C)
        scale = torch.sigmoid(self.fc2(torch.relu(self.fc1(scale))))
        return x * scale[:, :, None, None]


class ConcurrentSE(nn.Module):
    """EfficientAT's SE container; the released mn models use one channel-SE layer (max of one = itself)."""

    def __init__(self, channels: int, reduction: int = 4):
        super().__init__()
        self.conc_se_layers = nn.ModuleList([SqueezeExcitation(channels, make_divisible(channels // reduction))])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = torch.stack([layer(x) for layer in self.conc_se_layers])  # (L, B, C, F, T)
        return outs.max(dim=0).values


class InvertedResidual(nn.Module):
    def __init__(self, c_in: int, kernel: int, expanded: int, c_out: int, use_se: bool, act: str, stride: int):
        super().__init__()
        activation = ACTIVATIONS[act]
        layers: list[nn.Module] = []
        if expanded != c_in:
            layers.append(conv_bn_act(c_in, expanded, 1, activation=activation))
        layers.append(conv_bn_act(expanded, expanded, kernel, stride, groups=expanded, activation=activation))
        if use_se:
            layers.append(ConcurrentSE(expanded))
        layers.append(conv_bn_act(expanded, c_out, 1))
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return out + x if self.residual else out


@dataclass(frozen=True)
class MNSpec:
    width_mult: float = 0.4
    n_classes: int = 527
    head_hidden: int = 512


class EfficientATMN(nn.Module):
    """log-mel (B, 1, 128, T) -> (logits (B, 527), embedding (B, C_last))."""

    def __init__(self, spec: MNSpec = MNSpec()):
        super().__init__()
        width = partial(lambda c, w: make_divisible(c * w), w=spec.width_mult)
        c_in = width(16)
        layers: list[nn.Module] = [conv_bn_act(1, c_in, 3, stride=2, activation=nn.Hardswish)]
        for kernel, expanded, c_out, use_se, act, stride in MOBILENETV3_LARGE:
            layers.append(InvertedResidual(c_in, kernel, width(expanded), width(c_out), use_se, act, stride))
            c_in = width(c_out)
        self.embed_dim = 6 * c_in
        layers.append(conv_bn_act(c_in, self.embed_dim, 1, activation=nn.Hardswish))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(self.embed_dim, spec.head_hidden), nn.Hardswish(),
            nn.Dropout(0.2), nn.Linear(spec.head_hidden, spec.n_classes),
        )

    def forward(self, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        fmap = self.features(mel)  # (B, C, F', T')
        embedding = fmap.mean(dim=(2, 3))  # (B, C)
        return self.classifier(fmap), embedding


class EfficientATFrontEnd(nn.Module):
    """Eval-mode AugmentMelSTFT: pre-emphasis 0.97, |STFT|^2 (n_fft 1024, win 800 symmetric hann, hop 320),
    128 Kaldi mel banks 0-15 kHz, log(x + 1e-5), (x + 4.5) / 5."""

    def __init__(self, sample_rate: int = 32000, n_fft: int = 1024, win_length: int = 800, hop: int = 320,
                 n_mels: int = 128, fmin_hz: float = 0.0, fmax_hz: float = 15000.0):
        super().__init__()
        self.n_fft, self.win_length, self.hop = n_fft, win_length, hop
        self.register_buffer("window", torch.hann_window(win_length, periodic=False), persistent=False)
        self.register_buffer("preemphasis", torch.tensor([[[-0.97, 1.0]]]), persistent=False)
        banks, _ = torchaudio.compliance.kaldi.get_mel_banks(n_mels, n_fft, float(sample_rate), fmin_hz, fmax_hz,
                                                             100.0, -500.0, 1.0)
        self.register_buffer("mel_basis", nn.functional.pad(banks, (0, 1)), persistent=False)  # (M, n_fft/2+1)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:  # (B, N)
        x = nn.functional.conv1d(wave.unsqueeze(1), self.preemphasis).squeeze(1)  # (B, N-1)
        spec = torch.stft(x, self.n_fft, hop_length=self.hop, win_length=self.win_length, window=self.window,
                          center=True, normalized=False, return_complex=True)  # (B, F, T)
        mel = torch.matmul(self.mel_basis, spec.abs() ** 2)  # (B, M, T)
        return ((mel + 1e-5).log() + 4.5) / 5.0
