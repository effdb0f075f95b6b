"""`logmel`: DAViHD's audio input (spec §1.2, [C]): 16-kHz log-mel, 128 HTK bands, pooled to the 1-s grid.

The STFT/mel is plain torch (runs on GPU when the extractor's device is CUDA) and is computed in a streaming
fashion: audio chunks are framed with the correct overlap context, so the result equals the one-shot centred
(reflect-padded) STFT while memory stays bounded for long videos. Also home of `audio_blocks`, the fixed-size
block reader shared by the 1-s audio extractors.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from avhighlights.core.errors import ConfigError
from avhighlights.core.timebase import FeatureTrack, grid_steps
from avhighlights.core.types import MediaSource
from avhighlights.extractors.base import EXTRACTORS, Extractor, report_media_progress

LOG_EPS = 1e-8
PARITY_FRAMES_PER_S = 62.5  # DAViHD: 16000 / 256
PARITY_KERNEL = 62
POOLINGS = ("parity", "exact", "none")


def audio_blocks(media: MediaSource, sample_rate: int, block_samples: int, n_blocks: int,
                 chunk_s: float = 60.0) -> Iterator[np.ndarray]:
    """Exactly `n_blocks` consecutive (block_samples,) float32 blocks; the tail is zero-padded."""
    pending, emitted = np.zeros(0, dtype=np.float32), 0
    for chunk in media.audio_chunks(sample_rate, chunk_s=chunk_s):
        pending = np.concatenate([pending, chunk.samples.astype(np.float32)])
        while pending.size >= block_samples and emitted < n_blocks:
            yield pending[:block_samples]
            pending, emitted = pending[block_samples:], emitted + 1
    while emitted < n_blocks:
        block = np.zeros(block_samples, dtype=np.float32)
        block[: min(pending.size, block_samples)] = pending[:block_samples]
        pending, emitted = pending[block_samples:], emitted + 1
        yield block


def embed_blocks(media: MediaSource, sample_rate: int, block_samples: int, n_blocks: int, batch_size: int,
                 embed: Callable[[np.ndarray], np.ndarray]) -> list[np.ndarray]:
    """`embed` applied to stacks of up to `batch_size` consecutive blocks -> one (B, D) array per stack; the
    progress (seconds of video done) is reported after each stack."""
    rows, batch = [], []
    for i, block in enumerate(audio_blocks(media, sample_rate, block_samples, n_blocks)):
        batch.append(block)
        if len(batch) == batch_size:
            rows.append(embed(np.stack(batch)))
            batch = []
            report_media_progress(media, (i + 1) * block_samples / sample_rate)
    if batch:
        rows.append(embed(np.stack(batch)))
    return rows


def hz_to_mel_htk(freq_hz: torch.Tensor | float) -> torch.Tensor:
    return 2595.0 * torch.log10(1.0 + torch.as_tensor(freq_hz, dtype=torch.float64) / 700.0)


def mel_to_hz_htk(mel: torch.Tensor) -> torch.Tensor:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


def htk_mel_filterbank(n_freqs: int, fmin_hz: float, fmax_hz: float, n_mels: int, sample_rate: int) -> torch.Tensor:
    """Triangular HTK filters without area normalisation, (n_freqs, n_mels) (= torchaudio norm=None, htk)."""
    all_freqs = torch.linspace(0, sample_rate // 2, n_freqs, dtype=torch.float64)  # (F,)
    mel_pts = torch.linspace(float(hz_to_mel_htk(fmin_hz)), float(hz_to_mel_htk(fmax_hz)), n_mels + 2,
                             dtype=torch.float64)
    f_pts = mel_to_hz_htk(mel_pts)  # (M+2,)
    f_diff = f_pts[1:] - f_pts[:-1]  # (M+1,)
    slopes = f_pts[None, :] - all_freqs[:, None]  # (F, M+2)
    down = -slopes[:, :-2] / f_diff[:-1]
    up = slopes[:, 2:] / f_diff[1:]
    return torch.clamp(torch.minimum(down, up), min=0.0).float()  # (F, M)


class StreamingMelFrames:
    """Centred, reflect-padded STFT power -> mel, fed chunk by chunk; frames equal the one-shot result."""

    def __init__(self, sample_rate: int, n_fft: int, hop: int, n_mels: int, fmin_hz: float, fmax_hz: float,
                 device: torch.device | str = "cpu"):
        self.n_fft, self.hop, self.pad = n_fft, hop, n_fft // 2
        self.device = torch.device(device)
        self.window = torch.hann_window(n_fft, periodic=True, device=self.device)  # (n_fft,)
        self.fbank = htk_mel_filterbank(n_fft // 2 + 1, fmin_hz, fmax_hz, n_mels, sample_rate).to(self.device)
        self.buffer = torch.zeros(0, device=self.device)  # padded-signal samples not yet fully framed
        self.tail = torch.zeros(0, device=self.device)  # last pad+1 raw samples, for the right reflection
        self.started = False
        self.n_raw = 0

    def push(self, samples: np.ndarray) -> torch.Tensor:
        """Mel power frames (F, n_mels) completed by these samples."""
        raw = torch.as_tensor(np.asarray(samples, dtype=np.float32), device=self.device)
        self.n_raw += raw.numel()
        self.tail = torch.cat([self.tail, raw])[-(self.pad + 1):]
        self.buffer = torch.cat([self.buffer, raw])
        if not self.started:
            if self.buffer.numel() <= self.pad:
                return self._empty()
            left = self.buffer[1: self.pad + 1].flip(0)  # reflect: x[pad] ... x[1]
            self.buffer, self.started = torch.cat([left, self.buffer]), True
        return self._drain()

    def finish(self) -> torch.Tensor:
        """The remaining frames, after reflect-padding the right edge."""
        if not self.started:  # fewer than pad+1 samples in total: zero-extend so reflection is defined
            short = self.buffer
            self.buffer = torch.zeros(0, device=self.device)
            self.tail = torch.zeros(0, device=self.device)
            self.n_raw = 0
            self.push(torch.cat([short, torch.zeros(self.pad + 1 - short.numel(), device=self.device)]).cpu().numpy())
        right = self.tail[:-1].flip(0)[: self.pad]  # x[-2] ... x[-pad-1]
        self.buffer = torch.cat([self.buffer, right])
        return self._drain()

    def _drain(self) -> torch.Tensor:
        if self.buffer.numel() < self.n_fft:
            return self._empty()
        frames = self.buffer.unfold(0, self.n_fft, self.hop)  # (F, n_fft)
        self.buffer = self.buffer[frames.shape[0] * self.hop:]
        spectrum = torch.fft.rfft(frames * self.window, dim=1)  # (F, n_fft/2+1)
        return (spectrum.real**2 + spectrum.imag**2) @ self.fbank  # (F, n_mels)

    def _empty(self) -> torch.Tensor:
        return torch.zeros(0, self.fbank.shape[1], device=self.device)


@dataclass(frozen=True)
class LogMelConfig:
    sample_rate: int = 16000
    n_fft: int = 2048
    hop: int = 256
    n_mels: int = 128
    fmin_hz: float = 0.0
    fmax_hz: float = 8000.0
    pooling: str = "parity"  # "parity" (DAViHD avg-pool 62 of 62.5 frames/s) | "exact" | "none"
    chunk_s: float = 60.0

    def __post_init__(self) -> None:
        if self.pooling not in POOLINGS:
            raise ConfigError(f"logmel pooling {self.pooling!r} is not one of {POOLINGS}")


class SecondPooler:
    """Accumulates log-mel frames into 1-s rows without keeping the frames (parity or exact rule)."""

    def __init__(self, n_steps: int, n_mels: int, frames_per_s: float, parity: bool):
        self.n_steps, self.frames_per_s, self.parity = n_steps, frames_per_s, parity
        self.sums = torch.zeros(n_steps, n_mels, dtype=torch.float64)  # (T, M)
        self.counts = torch.zeros(n_steps, dtype=torch.float64)  # (T,)
        self.n_seen = 0
        self.parity_limit = math.floor(PARITY_FRAMES_PER_S * n_steps)

    def add(self, log_frames: torch.Tensor) -> None:
        index = torch.arange(self.n_seen, self.n_seen + log_frames.shape[0])  # global frame numbers
        self.n_seen += log_frames.shape[0]
        if self.parity:
            rows, keep = index // PARITY_KERNEL, index < self.parity_limit
        else:
            rows = torch.floor(index / self.frames_per_s).long()  # the second holding the frame centre
            keep = torch.ones_like(index, dtype=torch.bool)
        keep &= rows < self.n_steps
        self.sums.index_add_(0, rows[keep], log_frames.detach().cpu().double()[keep])
        self.counts.index_add_(0, rows[keep], torch.ones(int(keep.sum()), dtype=torch.float64))

    def result(self) -> np.ndarray:
        if self.parity:  # zero-padded frames count in DAViHD's average
            return (self.sums / PARITY_KERNEL).float().numpy()
        empty_value = math.log(LOG_EPS)
        means = self.sums / self.counts.clamp(min=1.0)[:, None]
        means[self.counts == 0] = empty_value
        return means.float().numpy()


@EXTRACTORS.register("logmel")
class LogMelExtractor(Extractor):
    """log(mel + 1e-8) of 16-kHz mono; rows per 1-s grid step (parity/exact) or per STFT hop (none)."""

    version = "1"
    modality = "audio"
    Config = LogMelConfig
    runtime_fields = frozenset({"batch_size", "weights_path", "chunk_s"})  # streaming is exact: same output

    @property
    def dim(self) -> int:
        return self.config.n_mels

    @property
    def hop_s(self) -> float:
        return self.config.hop / self.config.sample_rate if self.config.pooling == "none" else 1.0

    def frame_stream(self) -> StreamingMelFrames:
        c = self.config
        return StreamingMelFrames(c.sample_rate, c.n_fft, c.hop, c.n_mels, c.fmin_hz, c.fmax_hz, self.device)

    def extract(self, media: MediaSource) -> FeatureTrack:
        c = self.config
        n_steps = grid_steps(media.info.duration_s)
        stream = self.frame_stream()
        n_samples = n_steps * c.sample_rate
        if c.pooling == "none":
            frames = [torch.log(f + LOG_EPS).cpu() for f in self._mel_frames(media, stream, n_samples)]
            values = torch.cat(frames).numpy()  # (F, M): full rate, the output itself
            return FeatureTrack.regular(values, hop_s=self.hop_s, name=self.name)
        pooler = SecondPooler(n_steps, c.n_mels, c.sample_rate / c.hop, parity=c.pooling == "parity")
        for mel in self._mel_frames(media, stream, n_samples):
            pooler.add(torch.log(mel + LOG_EPS))
        return FeatureTrack.regular(pooler.result(), hop_s=1.0, name=self.name)

    def _mel_frames(self, media: MediaSource, stream: StreamingMelFrames, n_samples: int) -> Iterator[torch.Tensor]:
        """Mel frames of the audio's first `n_samples` samples (zero-padded when the track is shorter)."""
        block = int(self.config.chunk_s * self.config.sample_rate)
        n_blocks = math.ceil(n_samples / block)
        for i, samples in enumerate(audio_blocks(media, self.config.sample_rate, block, n_blocks, self.config.chunk_s)):
            yield stream.push(samples[: max(0, n_samples - i * block)])
            report_media_progress(media, (i + 1) * self.config.chunk_s)
        yield stream.finish()
