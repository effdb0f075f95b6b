"""PANNs Cnn14 (Kong et al., 2020), written from the published architecture with the official parameter names
(qiuqiangkong/audioset_tagging_cnn pytorch/models.py + torchlibrosa stft.py) so the released checkpoints load with
strict=True. Inference only: SpecAugment, mixup and dropout are training-time and therefore absent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

CONV_CHANNELS = (64, 128, 256, 512, 1024, 2048)
AMIN = 1e-10


@dataclass(frozen=True)
class Cnn14Spec:
    sample_rate: int = 32000
    window_size: int = 1024
    hop_size: int = 320
    mel_bins: int = 64
    fmin_hz: float = 50.0
    fmax_hz: float = 14000.0
    classes_num: int = 527


def dft_conv_weights(n_fft: int) -> tuple[torch.Tensor, torch.Tensor]:
    """torchlibrosa's STFT as two Conv1d kernels (real, imag), each (n_fft/2+1, 1, n_fft), periodic hann."""
    n = np.arange(n_fft)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * n / n_fft)  # scipy hann, fftbins=True
    dft = np.exp(-2j * np.pi * np.outer(n, n) / n_fft)[:, : n_fft // 2 + 1] * window[:, None]  # (n_fft, K)
    as_kernel = lambda part: torch.tensor(part.T, dtype=torch.float32)[:, None, :]  # noqa: E731
    return as_kernel(dft.real), as_kernel(dft.imag)


class STFT(nn.Module):
    def __init__(self, n_fft: int, hop: int):
        super().__init__()
        self.n_fft = n_fft
        bins = n_fft // 2 + 1
        self.conv_real = nn.Conv1d(1, bins, n_fft, stride=hop, bias=False)
        self.conv_imag = nn.Conv1d(1, bins, n_fft, stride=hop, bias=False)
        real, imag = dft_conv_weights(n_fft)
        self.conv_real.weight.data.copy_(real)
        self.conv_imag.weight.data.copy_(imag)
        self.requires_grad_(False)

    def forward(self, wave: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # (B, N)
        x = F.pad(wave[:, None, :], (self.n_fft // 2, self.n_fft // 2), mode="reflect")  # (B, 1, N + n_fft)
        real = self.conv_real(x).transpose(1, 2)[:, None]  # (B, 1, T, K)
        imag = self.conv_imag(x).transpose(1, 2)[:, None]
        return real, imag


class Spectrogram(nn.Module):
    """Power spectrogram (B, 1, T, K)."""

    def __init__(self, n_fft: int, hop: int):
        super().__init__()
        self.stft = STFT(n_fft, hop)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        real, imag = self.stft(wave)
        return real**2 + imag**2


class LogmelFilterBank(nn.Module):
    """Slaney mel filterbank (librosa default) as parameter `melW` (K, n_mels), then 10 log10(max(x, 1e-10))."""

    def __init__(self, sample_rate: int, n_fft: int, n_mels: int, fmin_hz: float, fmax_hz: float):
        super().__init__()
        import librosa

        mel = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin_hz, fmax=fmax_hz)
        self.melW = nn.Parameter(torch.tensor(mel.T, dtype=torch.float32), requires_grad=False)

    def forward(self, power: torch.Tensor) -> torch.Tensor:  # (B, 1, T, K)
        mel = torch.matmul(power, self.melW)  # (B, 1, T, M)
        return 10.0 * torch.log10(torch.clamp(mel, min=AMIN))  # ref = 1.0, top_db None


class ConvBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, 1, 1, bias=False)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor, pool_size: tuple[int, int]) -> torch.Tensor:
        x = F.relu_(self.bn1(self.conv1(x)))
        x = F.relu_(self.bn2(self.conv2(x)))
        return F.avg_pool2d(x, kernel_size=pool_size)


class Cnn14(nn.Module):
    """waveform (B, N) -> (clipwise probabilities (B, 527), embedding (B, 2048))."""

    def __init__(self, spec: Cnn14Spec = Cnn14Spec()):
        super().__init__()
        self.spectrogram_extractor = Spectrogram(spec.window_size, spec.hop_size)
        self.logmel_extractor = LogmelFilterBank(spec.sample_rate, spec.window_size, spec.mel_bins,
                                                 spec.fmin_hz, spec.fmax_hz)
        self.bn0 = nn.BatchNorm2d(spec.mel_bins)
        in_channels = (1,) + CONV_CHANNELS[:-1]
        for i, (c_in, c_out) in enumerate(zip(in_channels, CONV_CHANNELS, strict=True), start=1):
            setattr(self, f"conv_block{i}", ConvBlock(c_in, c_out))
        self.fc1 = nn.Linear(CONV_CHANNELS[-1], CONV_CHANNELS[-1], bias=True)
        self.fc_audioset = nn.Linear(CONV_CHANNELS[-1], spec.classes_num, bias=True)
        self.embed_dim = CONV_CHANNELS[-1]

    def forward(self, wave: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.logmel_extractor(self.spectrogram_extractor(wave))  # (B, 1, T, M)
        x = self.bn0(x.transpose(1, 3)).transpose(1, 3)  # bn over mel bins
        for i in range(1, len(CONV_CHANNELS) + 1):
            pool = (2, 2) if i < len(CONV_CHANNELS) else (1, 1)
            x = getattr(self, f"conv_block{i}")(x, pool)  # (B, C, T', M')
        x = x.mean(dim=3)  # (B, C, T')
        x = x.max(dim=2).values + x.mean(dim=2)  # (B, C)
        embedding = F.relu_(self.fc1(x))  # (B, 2048)
        return torch.sigmoid(self.fc_audioset(embedding)), embedding


def expected_cnn14_parameters(spec: Cnn14Spec = Cnn14Spec()) -> dict[str, tuple[int, ...]]:
    """(name -> shape) of every tensor in the official Cnn14 state dict, from the published architecture."""
    bins = spec.window_size // 2 + 1
    names = {
        "spectrogram_extractor.stft.conv_real.weight": (bins, 1, spec.window_size),
        "spectrogram_extractor.stft.conv_imag.weight": (bins, 1, spec.window_size),
        "logmel_extractor.melW": (bins, spec.mel_bins),
        **_bn_entries("bn0", spec.mel_bins),
    }
    for i, (c_in, c_out) in enumerate(zip((1,) + CONV_CHANNELS[:-1], CONV_CHANNELS, strict=True), start=1):
        names[f"conv_block{i}.conv1.weight"] = (c_out, c_in, 3, 3)
        names[f"conv_block{i}.conv2.weight"] = (c_out, c_out, 3, 3)
        names.update(_bn_entries(f"conv_block{i}.bn1", c_out))
        names.update(_bn_entries(f"conv_block{i}.bn2", c_out))
    names.update({"fc1.weight": (2048, 2048), "fc1.bias": (2048,),
                  "fc_audioset.weight": (spec.classes_num, 2048), "fc_audioset.bias": (spec.classes_num,)})
    return names


def _bn_entries(prefix: str, channels: int) -> dict[str, tuple[int, ...]]:
    shapes = {"weight": (channels,), "bias": (channels,), "running_mean": (channels,),
              "running_var": (channels,), "num_batches_tracked": ()}
    return {f"{prefix}.{key}": shape for key, shape in shapes.items()}
